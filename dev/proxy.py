"""A minimal HTTP reverse-proxy step shared by dev/gateway.py and dev/watchdog.py (local use only).

fetch() sends the request that a BaseHTTPRequestHandler is serving to an upstream with the same method,
path, query, headers and body; relay() writes the upstream's status, headers and body back.

What a client can do to it, and what it gets:
  * a body over BUFFER_BYTES (1 MiB) is streamed to the upstream as it arrives, never held whole (a smaller
    one is read first, so that a request on a pooled connection the upstream had closed can be sent again);
    a declared Content-Length over MAX_BODY_BYTES (the functions' limit, 16 MiB) is a 413 at once, and the
    body is then read and dropped (for at most CLIENT_TIMEOUT_S of silence), so the client can read the 413;
  * a client that sends its headers or body too slowly is cut off after CLIENT_TIMEOUT_S of silence (408 when
    it had sent its headers);
  * `Transfer-Encoding: chunked` is refused with 411 and the connection closed (a chunked body read as a
    fixed-length one was parsed as a second request);
  * at most MAX_CONNECTIONS connections are served at once; past that a new one gets a 503 and is closed.
Hop-by-hop headers are dropped. Upstream connections are kept alive and reused (a small pool per host and
port), as a real gateway does: no new TCP connection, relay or server thread per request. A reused connection
that the upstream closed while idle fails before any answer; the request is then sent once more on a new
connection (for a vote, at worst the same vote twice: the ledger keeps a person's latest vote per image).
"""
from __future__ import annotations

import http.client
import json
import os
import queue
import select
import socket
import threading
from typing import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length"}


MAX_BODY_BYTES = int(os.environ.get("AFTERDARK_MAX_BODY_BYTES", str(16 * 1024 * 1024)))
CLIENT_TIMEOUT_S = float(os.environ.get("GATEWAY_CLIENT_TIMEOUT_S", "15"))
MAX_CONNECTIONS = int(os.environ.get("GATEWAY_MAX_CONNECTIONS", "256"))
CHUNK = 64 * 1024
BUFFER_BYTES = 1024 * 1024


class UpstreamTimeout(Exception):
    pass


class UpstreamError(Exception):
    pass


class BadRequest(Exception):
    """The client's request cannot be forwarded: `status` (400, 408, 411, 413) and why."""
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class BodyStream:
    """The request body, read from the client in chunks as the upstream connection takes it (or first, whole,
    when it is small: `buffered`, which can be sent again)."""
    def __init__(self, rfile, length: int) -> None:
        self.rfile, self.left, self.read_bytes = rfile, length, 0
        self.buffered: bytes | None = None
        if length <= BUFFER_BYTES:
            self.buffered = self._take(length)

    def _take(self, n: int) -> bytes:
        parts = []
        while n > 0:
            part = self.read(n)
            parts.append(part)
            n -= len(part)
        return b"".join(parts)

    @property
    def payload(self):
        return self.buffered if self.buffered is not None else self

    @property
    def replayable(self) -> bool:
        return self.buffered is not None or self.read_bytes == 0

    def read(self, n: int = CHUNK) -> bytes:
        if self.left <= 0:
            return b""
        try:
            data = self.rfile.read(min(n, self.left, CHUNK))
        except (socket.timeout, TimeoutError) as err:
            raise BadRequest(408, f"the client stopped sending its body ({err})") from err
        if not data:
            raise BadRequest(400, "the client closed the connection before its whole body")
        self.left -= len(data)
        self.read_bytes += len(data)
        return data


def body_of(req: BaseHTTPRequestHandler) -> BodyStream:
    """The request's body as a stream, once its framing is checked (BadRequest otherwise)."""
    if "chunked" in (req.headers.get("Transfer-Encoding") or "").lower():
        raise BadRequest(411, "chunked request bodies are not supported here: send a Content-Length")
    declared = (req.headers.get("Content-Length") or "0").strip()
    if not declared.isdigit():
        raise BadRequest(400, "Content-Length must be a number of bytes")
    if int(declared) > MAX_BODY_BYTES:
        raise BadRequest(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")
    return BodyStream(req.rfile, int(declared))


def refuse(req: BaseHTTPRequestHandler, err: BadRequest) -> None:
    """Answer a request that could not be forwarded, as JSON, and close the connection (its body may be
    unread, so nothing after it on this connection can be trusted to be a request)."""
    req.close_connection = True
    try:
        reply(req, err.status, json.dumps({"error": "bad_request" if err.status == 400 else
                                           {408: "timeout", 411: "length_required", 413: "too_large"}[err.status],
                                           "message": err.message}),
              "application/json", headers={"Connection": "close"})
        if err.status == 413:                   # let the client finish sending, so it can read the answer
            drain(req, 4 * MAX_BODY_BYTES)
    except OSError:
        pass                                    # the client is gone


def drain(req: BaseHTTPRequestHandler, limit: int) -> None:
    """Read and drop up to `limit` bytes of a refused body (each read waits at most the handler's timeout)."""
    left = min(int((req.headers.get("Content-Length") or "0").strip() or 0), limit)
    try:
        while left > 0:
            part = req.rfile.read(min(CHUNK, left))
            if not part:
                return
            left -= len(part)
    except (OSError, TimeoutError, ValueError):
        return


POOL_SIZE = 32
_pools: dict[tuple, queue.LifoQueue] = {}
_pools_lock = threading.Lock()


def _pool(host: str, port: int, connection) -> queue.LifoQueue:
    """Idle connections to one upstream, by how they are made (a namespace's 127.0.0.1 is not the host's)."""
    with _pools_lock:
        return _pools.setdefault((host, port, connection), queue.LifoQueue(POOL_SIZE))


def _exchange(conn: http.client.HTTPConnection, method: str, path: str, body: BodyStream, headers: dict):
    try:
        conn.request(method, path, body=body.payload, headers=headers)
    except (BrokenPipeError, ConnectionResetError):
        pass        # the upstream answered before reading the whole body (a 413): read that answer, as Go's proxy does
    resp = conn.getresponse()
    return resp, resp.read()


def fetch(req: BaseHTTPRequestHandler, host: str, port: int, path: str, timeout: float,
          extra_headers: dict[str, str] | None = None,
          connection: Callable[..., http.client.HTTPConnection] = http.client.HTTPConnection
          ) -> tuple[int, str, list[tuple[str, str]], bytes]:
    """Send the request being served to http://host:port/path with the same method, headers and body, on a
    pooled keep-alive connection, the body streamed. Returns (status, reason, headers, body). Raises
    BadRequest (the client's fault), UpstreamTimeout / UpstreamError. `connection` makes a connection (e.g.
    one whose socket is created inside a function's network namespace: dev/netns.py)."""
    body = body_of(req)
    headers = {k: v for k, v in req.headers.items() if k.lower() not in HOP_BY_HOP}
    headers.update(extra_headers or {})
    headers["Content-Length"] = str(len(body.buffered) if body.buffered is not None else body.left)
    pool = _pool(host, port, connection)
    try:
        conn, reused = pool.get_nowait(), True
        if conn.sock is not None and select.select([conn.sock], [], [], 0)[0]:
            conn.close()                  # readable while idle: the upstream closed it (EOF); a new one instead
            conn, reused = connection(host, port, timeout=timeout), False
    except queue.Empty:
        conn, reused = connection(host, port, timeout=timeout), False
    conn.timeout = timeout
    if conn.sock is not None:
        conn.sock.settimeout(timeout)
    try:
        try:
            resp, data = _exchange(conn, req.command, path, body, headers)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused or not body.replayable:          # a body already streamed cannot be sent again
                raise
            conn.close()                                 # closed while idle: once more, on a new connection
            conn = connection(host, port, timeout=timeout)
            resp, data = _exchange(conn, req.command, path, body, headers)
    except BadRequest:
        conn.close()                                     # the upstream got part of a body: never reuse it
        raise
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
    if req.headers.get("Transfer-Encoding") or (req.headers.get("Content-Length") or "0").strip() != "0":
        req.close_connection = True             # its body may be unread: the next bytes are no request
    req.send_response(status)
    req.send_header("Content-Type", content_type)
    req.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
        req.send_header(k, v)
    req.end_headers()
    if req.command != "HEAD":
        req.wfile.write(data)


class Server(ThreadingHTTPServer):
    """A thread per connection, at most MAX_CONNECTIONS at once; a handler's `timeout` (CLIENT_TIMEOUT_S)
    cuts off a client that sends nothing."""
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                b"Connection: close\r\nContent-Length: 71\r\n\r\n"
                                b'{"error":"unavailable","message":"too many connections; retry shortly"}')
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()
