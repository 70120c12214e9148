"""The template's server: a Flask WSGI app, served by waitress on 127.0.0.1:5000, behind of-watchdog (mode=http).

Same contract as OpenFaaS python3-http: the function module exposes `handle(event, context)`; the event is the
one normalised request (layers.edge.request.Request): `body` (bytes), `headers` (case-insensitive), `method`,
`query`, `path` and `content_type`, built once here.
`handle` returns a dict {"statusCode", "body", "headers"} (a dict body is sent as JSON, bytes raw), or None.

Users never edit this file. In the image the handler is `function.handler`; a local run may point
AFTERDARK_HANDLER at another module (dev/gateway.py sets `functions.<name>.handler`).

Logs are JSON lines (layers.logs) carrying the call id (X-Call-Id), the function and, when known, the principal
and the model version; each answer is logged once ("answered", status, duration_ms).
Every answer is counted and timed (layers.metrics: afterdark_http_requests_total, ..._duration_seconds), and
GET /metrics answers the Prometheus text format to a bearer of an API token.

A request body over AFTERDARK_MAX_BODY_BYTES (16 MiB) is refused with a JSON 413 before the handler reads it
into memory (Flask's MAX_CONTENT_LENGTH, on the declared length and on a chunked body as it streams). Waitress
spools bodies above 512 KiB to a temporary file, not memory, and refuses anything over 4x the limit at once,
from the declared length (max_request_body_size).
"""
import importlib
import logging
import time
import uuid

from flask import Flask, Response, jsonify, request
from waitress import serve

from layers import logs, metrics
from layers.config import Settings
from layers.edge.request import Request

SETTINGS = Settings.from_env()                 # the only place the server's settings are read (layers.config)
SERVER = SETTINGS.server
FUNCTION = SERVER.function
logs.configure(FUNCTION, SERVER.log_level)      # before the handler's own set-up
log = logging.getLogger("afterdark.request")

MAX_BODY_BYTES = SERVER.max_body_bytes
handler = importlib.import_module(SERVER.handler)
app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES


@app.errorhandler(413)
def too_large(_):
    return jsonify(error="too_large", message=f"the request body is larger than {MAX_BODY_BYTES} bytes"), 413


class Context:
    hostname = SERVER.hostname


def normalised() -> Request:
    """The one request the handler, and every middleware, reads (layers.edge.request)."""
    return Request.of(request.method, request.path, request.args.items(), request.headers.items(), request.get_data())


def format_response(res):
    if res is None:
        return ("", 200)
    if not isinstance(res, dict):
        return res
    status = res.get("statusCode", 200)
    headers = res.get("headers") or {}
    body = res.get("body", "")
    if isinstance(body, (dict, list)):
        resp = jsonify(body)
        resp.status_code = status
        for k, v in (headers.items() if isinstance(headers, dict) else headers):
            resp.headers[k] = v
        return resp
    if isinstance(body, bytes):
        return Response(body, status=status, headers=headers)
    return Response(str(body), status=status, headers=headers)


@app.route("/", defaults={"path": ""}, methods=["GET", "PUT", "POST", "PATCH", "DELETE"])
@app.route("/<path:path>", methods=["GET", "PUT", "POST", "PATCH", "DELETE"])
def call_handler(path):
    start = time.perf_counter()
    if request.path == "/metrics" and request.method == "GET":
        status, body, ctype = metrics.exposition(request.headers, SETTINGS)
        return Response(body, status=status, content_type=ctype)
    with logs.request(request.headers.get("X-Call-Id") or uuid.uuid4().hex):
        resp = app.make_response(format_response(handler.handle(normalised(), Context())))
        took = time.perf_counter() - start
        log.info("answered %s %s: %s in %.1f ms", request.method, request.path, resp.status_code, took * 1000)
    metrics.HTTP_REQUESTS.labels(FUNCTION, request.method, str(resp.status_code)).inc()
    metrics.HTTP_SECONDS.labels(FUNCTION).observe(took)
    return resp


if __name__ == "__main__":
    serve(app, host=SERVER.bind, port=SERVER.port, threads=SERVER.threads, max_request_body_size=4 * MAX_BODY_BYTES)
