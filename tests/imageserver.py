"""A local image host for the tests, on loopback only (127.0.0.1:8765 by default; dev/test.sh allow-lists it).

    /img/<seed>.jpg        a synthetic portrait (label in the X-Label header)
    /big                   12 MB of JPEG-looking bytes, streamed
    /bomb.png              a tiny PNG that decodes to 400 megapixels
    /truncated.jpg         half a JPEG
    /text                  a text/plain page
    /slow?s=N              waits N seconds, then a portrait
    /drip?every=S&n=N      declares N bytes, then sends one every S seconds
    /redirect?to=URL       302 to URL
    /loop?n=N              a redirect chain of N hops back to itself
    /status/<code>         that status
"""
from __future__ import annotations

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from portraits.synth import portrait, to_jpeg


def bomb_png() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    BOMB = None

    def log_message(self, *args):
        pass

    def send(self, status: int, body: bytes, ctype: str = "image/jpeg", headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path
        if path.startswith("/img/"):
            seed = int(path.split("/")[-1].split(".")[0])
            img, label, _ = portrait(seed)
            return self.send(200, to_jpeg(img), headers={"X-Label": label})
        if path == "/big":
            size = 12 * 1024 * 1024
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(size)) if q.get("declare") else None
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"\xff\xd8\xff\xe0" + b"\0" * (64 * 1024 - 4)
            try:
                for _ in range(size // len(chunk)):
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True
            return
        if path == "/bomb.png":
            Handler.BOMB = Handler.BOMB or bomb_png()
            return self.send(200, Handler.BOMB, "image/png")
        if path == "/truncated.jpg":
            data = to_jpeg(portrait(7)[0])
            return self.send(200, data[: len(data) // 2])
        if path == "/text":
            return self.send(200, b"hello, not an image", "text/plain")
        if path == "/slow":
            time.sleep(float(q.get("s", "2")))
            img, label, _ = portrait(int(q.get("seed", "3")))
            return self.send(200, to_jpeg(img), headers={"X-Label": label})
        if path == "/drip":
            every, n = float(q.get("every", "9")), int(q.get("n", "20"))
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            try:
                for _ in range(n):
                    self.wfile.write(b"\xff")
                    self.wfile.flush()
                    time.sleep(every)
            except OSError:
                pass
            return None
        if path == "/redirect":
            return self.send(302, b"", "text/plain", {"Location": q["to"]})
        if path == "/loop":
            n = int(q.get("n", "5"))
            return self.send(302, b"", "text/plain", {"Location": f"/loop?n={n - 1}" if n > 0 else "/img/1.jpg"})
        if path.startswith("/status/"):
            return self.send(int(path.split("/")[-1]), b"nope", "text/plain")
        return self.send(404, b"no such path", "text/plain")


def serve(host: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
