"""A minimal HTTP reverse-proxy step shared by dev/gateway.py and dev/watchdog.py (local use only).

fetch() sends the request that a BaseHTTPRequestHandler is serving to an upstream with the same method,
path, query, headers and body; relay() writes the upstream's status, headers and body back.
Hop-by-hop headers are dropped. Upstream connections are kept alive and reused (a small pool per host and
port), as a real gateway does: no new TCP connection, relay or server thread per request. A reused connection
that the upstream closed while idle fails before any answer; the request is then sent once more on a new
connection (for a vote, at worst the same vote twice: the ledger keeps a person's latest vote per image).
"""
from __future__ import annotations

import http.client
import queue
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length"}


class UpstreamTimeout(Exception):
    pass


class UpstreamError(Exception):
    pass


def read_body(req: BaseHTTPRequestHandler) -> bytes:
    length = int(req.headers.get("Content-Length") or 0)
    return req.rfile.read(length) if length else b""


POOL_SIZE = 32
_pools: dict[tuple[str, int], queue.LifoQueue] = {}
_pools_lock = threading.Lock()


def _pool(host: str, port: int) -> queue.LifoQueue:
    with _pools_lock:
        return _pools.setdefault((host, port), queue.LifoQueue(POOL_SIZE))


def _exchange(conn: http.client.HTTPConnection, method: str, path: str, body: bytes, headers: dict):
    try:
        conn.request(method, path, body=body, headers=headers)
    except (BrokenPipeError, ConnectionResetError):
        pass        # the upstream answered before reading the whole body (a 413): read that answer, as Go's proxy does
    resp = conn.getresponse()
    return resp, resp.read()


def fetch(req: BaseHTTPRequestHandler, host: str, port: int, path: str, timeout: float,
          extra_headers: dict[str, str] | None = None) -> tuple[int, str, list[tuple[str, str]], bytes]:
    """Send the request being served to http://host:port/path with the same method, headers and body, on a
    pooled keep-alive connection. Returns (status, reason, headers, body). Raises UpstreamTimeout /
    UpstreamError."""
    body = read_body(req)
    headers = {k: v for k, v in req.headers.items() if k.lower() not in HOP_BY_HOP}
    headers.update(extra_headers or {})
    headers["Content-Length"] = str(len(body))
    pool = _pool(host, port)
    try:
        conn, reused = pool.get_nowait(), True
    except queue.Empty:
        conn, reused = http.client.HTTPConnection(host, port, timeout=timeout), False
    conn.timeout = timeout
    if conn.sock is not None:
        conn.sock.settimeout(timeout)
    try:
        try:
            resp, data = _exchange(conn, req.command, path, body, headers)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            conn.close()                                 # closed while idle: once more, on a new connection
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
            resp, data = _exchange(conn, req.command, path, body, headers)
    except (socket.timeout, TimeoutError) as err:
        conn.close()
        raise UpstreamTimeout(str(err)) from err
    except (ConnectionError, http.client.HTTPException, OSError) as err:
        conn.close()
        raise UpstreamError(str(err)) from err
    if resp.will_close:
        conn.close()
    else:
        try:
            pool.put_nowait(conn)
        except queue.Full:
            conn.close()
    return resp.status, resp.reason, resp.getheaders(), data


def relay(req: BaseHTTPRequestHandler, status: int, reason: str, headers: list[tuple[str, str]], data: bytes,
          extra_headers: dict[str, str] | None = None) -> None:
    """Write an upstream answer back to the client, with `extra_headers` added."""
    req.send_response(status, reason)  # adds its own Server and Date
    for k, v in headers:
        if k.lower() not in HOP_BY_HOP and k.lower() not in ("server", "date"):
            req.send_header(k, v)
    for k, v in (extra_headers or {}).items():
        req.send_header(k, v)
    req.send_header("Content-Length", str(len(data)))
    req.end_headers()
    if req.command != "HEAD":
        req.wfile.write(data)


def reply(req: BaseHTTPRequestHandler, status: int, body: bytes | str, content_type: str = "text/plain; charset=utf-8",
          headers: dict[str, str] | None = None) -> None:
    data = body.encode() if isinstance(body, str) else body
    req.send_response(status)
    req.send_header("Content-Type", content_type)
    req.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
        req.send_header(k, v)
    req.end_headers()
    if req.command != "HEAD":
        req.wfile.write(data)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
