#!/usr/bin/env python3
"""A real HTTP peer for the mlx.http tests, on 127.0.0.1 only.

usage: http_server.py DIR [--delay SECONDS] [--unhealthy N] [--tls CERT KEY]

Binds an ephemeral port, prints it on the first line of stdout, and serves
until GET /shutdown or until its parent process goes away. With --delay it
accepts connections only after SECONDS (until then they are refused), as a
service that is still starting. DIR holds
the files uploaded with PUT/POST /files/NAME. Routes:

  /status/CODE[?retry_after=S]        that status, body "status CODE"
  /flaky/KEY?fail=N[&status=S][&retry_after=T]
                                      S (503) for the first N requests of KEY, then 200
  /hits/KEY                           {"hits": n} requests seen for KEY so far
  /health                             503 for the first --unhealthy N requests, then 200
                                      {"status": "ok"}
  POST /models                        201, the posted JSON object with "version": n added
  /slow?delay=S                       200 after S seconds
  /large?size=N                       N bytes: 0..255 repeated
  /redirect?to=URL[&code=302]         a redirect
  /loop                               redirects to itself forever
  /echo                               {method, path, target, query, headers, body,
                                       body_size, body_sha256, client_port} of the request
                                       (any method; target is the request line's, which
                                       names the whole URL when we are a proxy)
  /close                              closes the connection without a response
  /text                               200, "plain text, not JSON"
  PUT|POST /files/NAME                stores the body in DIR/NAME, 201 {"size", "sha256"}
  GET /files/NAME                     the stored file
"""
import hashlib
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CHUNK = 1 << 16
PATTERN = bytes(range(256)) * (CHUNK // 256)


class State:
    def __init__(self, directory):
        self.directory = directory
        self.hits = {}
        self.lock = threading.Lock()

    def hit(self, key):
        with self.lock:
            self.hits[key] = self.hits.get(key, 0) + 1
            return self.hits[key]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse shows
    disable_nagle_algorithm = True  # else each kept-alive reply waits ~40 ms for an ACK

    def log_message(self, format, *args):  # quiet: stdout carries the port only
        pass

    def send(self, status, body=b"", headers=None, content_type="text/plain"):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, value, headers=None):
        self.send(status, json.dumps(value, sort_keys=True), headers, "application/json")

    def read_body(self, sink):
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            chunk = self.rfile.read(min(CHUNK, length))
            if not chunk:
                break
            sink(chunk)
            length -= len(chunk)

    def route(self):
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        parts = url.path.strip("/").split("/")
        name = parts[0]
        state = self.server.state
        if name == "files" and len(parts) == 2 and self.command in ("PUT", "POST"):
            return self.store(os.path.join(state.directory, os.path.basename(parts[1])))
        if name == "files" and len(parts) == 2:
            return self.serve_file(os.path.join(state.directory, os.path.basename(parts[1])))
        if name == "echo":
            return self.echo(url, query)
        if name == "models" and self.command == "POST":
            body = bytearray()
            self.read_body(body.extend)
            model = json.loads(body)
            model["version"] = state.hit("models")
            return self.send_json(201, model)
        self.read_body(lambda chunk: None)
        if name == "status":
            headers = {"Retry-After": query["retry_after"]} if "retry_after" in query else {}
            return self.send(int(parts[1]), "status %s\n" % parts[1], headers)
        if name == "flaky":
            n = state.hit(parts[1])
            if n <= int(query.get("fail", "1")):
                headers = {"Retry-After": query["retry_after"]} if "retry_after" in query else {}
                return self.send(int(query.get("status", "503")), "not yet\n", headers)
            return self.send_json(200, {"hits": n})
        if name == "health":
            if state.hit("health") <= self.server.unhealthy:
                return self.send(503, "starting\n")
            return self.send_json(200, {"status": "ok"})
        if name == "hits":
            return self.send_json(200, {"hits": state.hits.get(parts[1], 0)})
        if name == "slow":
            time.sleep(float(query.get("delay", "1")))
            return self.send(200, "slow\n")
        if name == "large":
            return self.large(int(query["size"]))
        if name == "redirect":
            return self.send(int(query.get("code", "302")), "", {"Location": query["to"]})
        if name == "loop":
            return self.send(302, "", {"Location": "/loop"})
        if name == "close":
            self.close_connection = True
            return None
        if name == "text":
            return self.send(200, "plain text, not JSON\n")
        if name == "shutdown":
            self.send(200, "bye\n")
            threading.Thread(target=self.server.shutdown, daemon=True).start()
            return None
        return self.send(404, "no route %s\n" % url.path)

    def echo(self, url, query):
        body = bytearray()
        self.read_body(body.extend)
        try:
            text = body.decode() if len(body) <= 1 << 20 else None
        except UnicodeDecodeError:
            text = None
        self.send_json(200, {
            "method": self.command,
            "path": url.path,
            "target": self.path,
            "query": url.query,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": text,
            "body_size": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "client_port": self.client_address[1],
        })

    def store(self, path):
        digest, size = hashlib.sha256(), 0
        with open(path, "wb") as f:
            def sink(chunk):
                nonlocal size
                digest.update(chunk)
                size += len(chunk)
                f.write(chunk)
            self.read_body(sink)
        self.send_json(201, {"size": size, "sha256": digest.hexdigest()})

    def serve_file(self, path):
        if not os.path.isfile(path):
            return self.send(404, "no file\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(os.path.getsize(path)))
        self.end_headers()
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                self.wfile.write(chunk)
        return None

    def large(self, size):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        while size > 0:
            n = min(size, len(PATTERN))
            self.wfile.write(PATTERN[:n])
            size -= n

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = lambda self: self.route()


def watch_parent():
    """Exits when the test that started us is gone, so no server outlives it."""
    parent = os.getppid()
    deadline = time.time() + 600
    while os.getppid() == parent and time.time() < deadline:
        time.sleep(0.2)
    os._exit(0)


def main():
    args = sys.argv[1:]
    directory, delay, unhealthy, tls = args.pop(0), 0.0, 0, None
    while args:
        option = args.pop(0)
        if option == "--delay":
            delay = float(args.pop(0))
        elif option == "--unhealthy":
            unhealthy = int(args.pop(0))
        elif option == "--tls":
            tls = (args.pop(0), args.pop(0))
        else:
            sys.exit("http_server.py: unknown option " + option)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
    server.daemon_threads = True
    server.state = State(directory)
    server.unhealthy = unhealthy
    server.server_bind()  # bound but not listening: connections are refused
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=watch_parent, daemon=True).start()
    if delay > 0:  # the port is known, connections are refused for a while
        print(server.server_address[1], flush=True)
        time.sleep(delay)
        server.server_activate()
    else:  # the port is printed once connections are accepted
        server.server_activate()
        print(server.server_address[1], flush=True)
    server.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main()
