#!/usr/bin/env python3
"""A recording stand-in for the comment APIs of GitHub and GitLab, on
127.0.0.1 only, for the tests of `mlx report --post`.

usage: forge_server.py LOG --token TOKEN [--per-page N]

Binds an ephemeral port, prints it on the first line of stdout, and serves
until its parent process goes away. Every request is appended to LOG as one
JSON line {method, path, query, auth (whether the token was right), body}.
Each forge starts with one comment that is not mlx's, so finding the
report's comment by its marker is exercised; lists are paginated by
per_page (at most N, default 100) and page, as the real APIs do.

GitHub (REST v3; token in "Authorization: Bearer|token TOKEN"):
  GET   /repos/OWNER/REPO/issues/N/comments       the comments of PR N
  POST  /repos/OWNER/REPO/issues/N/comments       201 {id, body, html_url}
  PATCH /repos/OWNER/REPO/issues/comments/ID      200 the updated comment
GitLab (API v4; token in "PRIVATE-TOKEN: TOKEN"):
  GET   /api/v4/projects/ID/merge_requests/IID/notes
  POST  /api/v4/projects/ID/merge_requests/IID/notes          201 {id, body}
  PUT   /api/v4/projects/ID/merge_requests/IID/notes/NOTE_ID  200 the updated note
A wrong or missing token answers 401 as the forge does.
"""
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class State:
    def __init__(self, log, token, per_page):
        self.log, self.token, self.max_per_page = log, token, per_page
        self.lock = threading.Lock()
        self.next_id = 1000
        # thread key -> list of comments
        self.threads = {}

    def comments(self, key):
        if key not in self.threads:
            self.next_id += 1
            self.threads[key] = [{"id": self.next_id, "body": "Looks good to me."}]
        return self.threads[key]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, value, headers=None):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        state = self.server.state
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        github = url.path.startswith("/repos/")
        if github:
            auth = self.headers.get("Authorization", "")
            authorized = auth in ("Bearer " + state.token, "token " + state.token)
        else:
            authorized = self.headers.get("PRIVATE-TOKEN", "") == state.token
        with state.lock:
            with open(state.log, "a") as f:
                f.write(json.dumps({"method": self.command, "path": url.path, "query": query,
                                    "auth": authorized, "body": body}) + "\n")
        if not authorized:
            message = "Bad credentials" if github else "401 Unauthorized"
            return self.reply(401, {"message": message})
        with state.lock:
            return self.route(state, url.path, query, body)

    def route(self, state, path, query, body):
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues/(\d+)/comments", path)
        if m:
            key = ("github", m.group(1), m.group(2))
            return self.list_or_create(state, key + (m.group(3),), query, body, True)
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues/comments/(\d+)", path)
        if m and self.command == "PATCH":
            return self.update(state, ("github", m.group(1), m.group(2)), int(m.group(3)), body)
        m = re.fullmatch(r"/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes", path)
        if m:
            return self.list_or_create(state, ("gitlab", m.group(1), m.group(2)), query, body, False)
        m = re.fullmatch(r"/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes/(\d+)", path)
        if m and self.command == "PUT":
            return self.update(state, ("gitlab", m.group(1), m.group(2)), int(m.group(3)), body)
        return self.reply(404, {"message": "Not Found"})

    def list_or_create(self, state, key, query, body, github):
        comments = state.comments(key)
        if self.command == "GET":
            per_page = min(int(query.get("per_page", 30 if github else 20)), state.max_per_page)
            page = int(query.get("page", 1))
            chunk = comments[(page - 1) * per_page:page * per_page]
            headers = {}
            if page * per_page < len(comments):
                if github:
                    headers["Link"] = '<http://127.0.0.1/next?page=%d>; rel="next"' % (page + 1)
                else:
                    headers["X-Next-Page"] = str(page + 1)
            return self.reply(200, chunk, headers)
        if self.command == "POST":
            if not isinstance(body, dict) or not isinstance(body.get("body"), str):
                return self.reply(422 if github else 400, {"message": "body is missing"})
            state.next_id += 1
            comment = {"id": state.next_id, "body": body["body"]}
            if github:
                comment["html_url"] = "https://github.example/pull/%s#issuecomment-%d" % (key[-1], state.next_id)
            comments.append(comment)
            return self.reply(201, comment)
        return self.reply(405, {"message": "Method Not Allowed"})

    def update(self, state, prefix, comment_id, body):
        for key, comments in state.threads.items():
            if key[:len(prefix)] != prefix:
                continue
            for comment in comments:
                if comment["id"] == comment_id:
                    if not isinstance(body, dict) or not isinstance(body.get("body"), str):
                        return self.reply(422, {"message": "body is missing"})
                    comment["body"] = body["body"]
                    return self.reply(200, comment)
        return self.reply(404, {"message": "Not Found"})

    do_GET = do_POST = do_PATCH = do_PUT = handle_any


def watch_parent():
    """Exits when the test that started us is gone, so no server outlives it."""
    parent = os.getppid()
    deadline = time.time() + 600
    while os.getppid() == parent and time.time() < deadline:
        time.sleep(0.2)
    os._exit(0)


def main():
    args = sys.argv[1:]
    log, token, per_page = args.pop(0), None, 100
    while args:
        option = args.pop(0)
        if option == "--token":
            token = args.pop(0)
        elif option == "--per-page":
            per_page = int(args.pop(0))
        else:
            sys.exit("forge_server.py: unknown option " + option)
    if not token:
        sys.exit("forge_server.py: --token is required")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.state = State(log, token, per_page)
    threading.Thread(target=watch_parent, daemon=True).start()
    print(server.server_address[1], flush=True)
    server.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main()
