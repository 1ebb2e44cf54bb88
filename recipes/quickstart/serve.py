#!/usr/bin/env python3
"""The quickstart's model server: a softmax-regression classifier behind
HTTP, on 127.0.0.1 only, with nothing but the Python standard library.

usage: python3 serve.py [--model FILE] [--model-version V] [--verbose] PORT

PORT 0 takes a free port. The port is printed on the first line of stdout
once the server accepts connections. Without --model the server starts
empty and answers 503 until a model is uploaded with PUT /model.

The model file (docs/deploy.md), JSON:

  {"classes":  ["setosa", "versicolor", "virginica"],     K class names
   "features": ["sepal_length", "sepal_width", ...],      D feature names
   "weights":  [[w_11, ..., w_1D], ..., [w_K1, ..., w_KD]],  one row per class
   "bias":     [b_1, ..., b_K],
   "mean":     [m_1, ..., m_D],                           standardisation
   "std":      [s_1, ..., s_D]}                           all > 0

  p(class k | x) = softmax_k(sum_j weights[k][j] * (x_j - mean_j) / std_j + bias[k])

Routes:

  GET  /health   200 {"status": "ok", "sha256", "version", "classes", "features"}
                 503 {"status": "no model"} before a model is loaded
  POST /predict  {"features": [[x_1, ..., x_D], ...]}
                 200 {"predictions": [class, ...], "probabilities": [[p_1, ..., p_K], ...],
                      "sha256", "version"}
                 400 {"error": why} for bad input; 503 without a model
  PUT  /model    the body is a model file; its version from the header
                 X-Model-Version or the query ?version=V (optional).
                 200 {"sha256", "version"} once it serves the new model;
                 400 {"error": why} for an invalid model, the old one kept;
                 413 for a body over 16 MiB

sha256 is the SHA-256 of the model file's bytes, as mlx names the object.
"""
import argparse
import hashlib
import json
import math
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 16 << 20


class InvalidModel(ValueError):
    pass


def _numbers(doc, key, length=None):
    value = doc.get(key)
    if not isinstance(value, list) or not value:
        raise InvalidModel(f'"{key}" must be a non-empty list of numbers')
    for x in value:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise InvalidModel(f'"{key}" must hold finite numbers only, not {json.dumps(x)}')
    if length is not None and len(value) != length:
        raise InvalidModel(f'"{key}" has {len(value)} numbers, expected {length}')
    return [float(x) for x in value]


def _names(doc, key, minimum):
    value = doc.get(key)
    if not isinstance(value, list) or len(value) < minimum or not all(isinstance(x, str) and x for x in value):
        raise InvalidModel(f'"{key}" must be a list of at least {minimum} non-empty strings')
    if len(set(value)) != len(value):
        raise InvalidModel(f'"{key}" has a name twice')
    return value


class Model:
    """A validated softmax-regression model; never changed once built."""

    def __init__(self, data, version=None):
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, ValueError) as e:
            raise InvalidModel(f"not JSON: {e}") from None
        if not isinstance(doc, dict):
            raise InvalidModel("a model is a JSON object")
        self.classes = _names(doc, "classes", 2)
        self.features = _names(doc, "features", 1)
        k, d = len(self.classes), len(self.features)
        weights = doc.get("weights")
        if not isinstance(weights, list) or len(weights) != k:
            raise InvalidModel(f'"weights" must have one row per class ({k})')
        self.weights = [_numbers({"weights": row}, "weights", d) for row in weights]
        self.bias = _numbers(doc, "bias", k)
        self.mean = _numbers(doc, "mean", d)
        self.std = _numbers(doc, "std", d)
        if any(s <= 0 for s in self.std):
            raise InvalidModel('"std" must be positive')
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.version = version

    def predict(self, rows):
        """Returns (classes, probabilities) for rows of D numbers."""
        predictions, probabilities = [], []
        for row in rows:
            z = [(x - m) / s for x, m, s in zip(row, self.mean, self.std)]
            logits = [sum(w * v for w, v in zip(ws, z)) + b for ws, b in zip(self.weights, self.bias)]
            top = max(logits)
            exps = [math.exp(l - top) for l in logits]
            total = sum(exps)
            p = [e / total for e in exps]
            probabilities.append(p)
            predictions.append(self.classes[p.index(max(p))])
        return predictions, probabilities

    def check_rows(self, doc):
        rows = doc.get("features") if isinstance(doc, dict) else None
        if not isinstance(rows, list) or not rows:
            raise ValueError('expected {"features": [[numbers], ...]}')
        d = len(self.features)
        for i, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != d:
                raise ValueError(f"row {i + 1}: expected {d} numbers ({', '.join(self.features)})")
            for x in row:
                if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                    raise ValueError(f"row {i + 1}: {json.dumps(x)} is not a finite number")
        return rows


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mlx-quickstart-serve/1"
    # Headers and body go out in two writes: without this, Nagle's
    # algorithm holds the body until the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("serve: %s %s\n" % (self.address_string(), fmt % args))

    def reply(self, status, doc):
        body = (json.dumps(doc) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        """The request body, or None after answering 411/413."""
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            self.reply(411, {"error": "a body with Content-Length is required"})
            return None
        if int(length) > MAX_BODY:
            self.close_connection = True
            self.reply(413, {"error": f"the body is larger than {MAX_BODY} bytes"})
            return None
        return self.rfile.read(int(length))

    def route(self):
        return urlsplit(self.path).path

    def do_GET(self):
        if self.route() != "/health":
            return self.reply(404, {"error": f"no route GET {self.route()}"})
        model = self.server.model
        if model is None:
            return self.reply(503, {"status": "no model"})
        self.reply(200, {"status": "ok", "sha256": model.sha256, "version": model.version,
                         "classes": model.classes, "features": model.features})

    def do_POST(self):
        data = self.body()
        if data is None:
            return
        if self.route() != "/predict":
            return self.reply(404, {"error": f"no route POST {self.route()}"})
        model = self.server.model  # one model for the whole request, even if swapped meanwhile
        if model is None:
            return self.reply(503, {"error": "no model loaded"})
        try:
            rows = model.check_rows(json.loads(data))
        except (UnicodeDecodeError, ValueError) as e:
            return self.reply(400, {"error": str(e)})
        predictions, probabilities = model.predict(rows)
        self.reply(200, {"predictions": predictions, "probabilities": probabilities,
                         "sha256": model.sha256, "version": model.version})

    def do_PUT(self):
        data = self.body()
        if data is None:
            return
        if self.route() != "/model":
            return self.reply(404, {"error": f"no route PUT {self.route()}"})
        version = self.headers.get("X-Model-Version") or parse_qs(urlsplit(self.path).query).get("version", [None])[0]
        try:
            model = Model(data, version)
        except InvalidModel as e:
            return self.reply(400, {"error": f"invalid model: {e}"})
        with self.server.swap:
            self.server.model = model  # requests already running keep the old one
        self.reply(200, {"sha256": model.sha256, "version": model.version})


def main(argv):
    parser = argparse.ArgumentParser(description="Serve a softmax-regression model on 127.0.0.1.")
    parser.add_argument("port", type=int, help="the port (0: any free one, printed)")
    parser.add_argument("--model", help="a model file to serve from the start")
    parser.add_argument("--model-version", help="the version of that model, as /health reports it")
    parser.add_argument("--verbose", action="store_true", help="log each request on stderr")
    args = parser.parse_args(argv)
    model = None
    if args.model:
        try:
            with open(args.model, "rb") as f:
                model = Model(f.read(), args.model_version)
        except (OSError, InvalidModel) as e:
            sys.stderr.write(f"serve: cannot load {args.model}: {e}\n")
            return 2
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.model, server.swap, server.verbose = model, threading.Lock(), args.verbose
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
