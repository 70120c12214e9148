"""A network namespace per function, as a pod has, for running the real of-watchdog locally (root only).

of-watchdog 0.11.6 binds its metrics port 8081 on every interface, unconditionally: two watchdogs on one host
collide. In a namespace of its own each has its own 8081 (and its own loopback). The namespace has no route
out, so this module bridges exactly the TCP ports a function needs, in userspace, both ways:

    ns = FunctionNamespace("predict")                # `unshare --net` (a holder process), loopback up
    ns = FunctionNamespace("predict", pid=4242)      # or the namespace a process is in (a container's)
    ns.forward_in(8300)                              # host 127.0.0.1:8300 -> the namespace's 127.0.0.1:8300
    ns.connection()                                  # or dial in directly: an HTTPConnection class (no relay)
    ns.forward_out([9000, 9092, 55432])              # the namespace's 127.0.0.1:9000 -> the host's, ...
    proc = ns.popen(["of-watchdog"], env=..., ...)   # started inside (nsenter --net)
    ns.close()

No address outside loopback is used or assigned, and nothing else on the host can reach into a namespace.
How: a listening socket belongs to the namespace it was created in, so a thread enters the namespace
(setns(2) applies to the calling thread only), creates the socket, and returns; connections are then
relayed between sockets created on either side.
"""
from __future__ import annotations

import ctypes
import http.client
import os
import shutil
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from typing import Iterator

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_HOST_NS = os.open("/proc/self/ns/net", os.O_RDONLY)       # this process's (the host's) namespace


def available() -> str | None:
    """None when namespaces can be used here, else why not."""
    if os.geteuid() != 0:
        return "not root (unshare --net needs CAP_SYS_ADMIN)"
    missing = [tool for tool in ("unshare", "nsenter", "ip") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not found"
    probe = subprocess.run(["unshare", "--net", "--", "true"], capture_output=True, text=True)
    if probe.returncode != 0:                       # root without CAP_SYS_ADMIN, e.g. in a container
        return f"unshare --net is not permitted here ({probe.stderr.strip() or probe.returncode})"
    return None


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")


@contextmanager
def inside(ns_fd: int) -> Iterator[None]:
    """This thread in the namespace for the block (sockets created here belong to it)."""
    _setns(ns_fd)
    try:
        yield
    finally:
        _setns(_HOST_NS)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass


def _relay(a: socket.socket, b: socket.socket) -> None:
    for s in (a, b):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = threading.Thread(target=_pump, args=(b, a), daemon=True)
    t.start()
    _pump(a, b)
    t.join()
    a.close()
    b.close()


class FunctionNamespace:
    def __init__(self, name: str, pid: int | None = None) -> None:
        """A new namespace (held by an `unshare --net` process), or, given `pid`, the one that process is in
        (a container started with --network none: Docker made it, with loopback up)."""
        self.name = name
        self._listeners: list[socket.socket] = []
        if pid is not None:
            self.holder, self.path = None, f"/proc/{pid}/ns/net"
            self.fd = os.open(self.path, os.O_RDONLY)
            return
        self.holder = subprocess.Popen(["unshare", "--net", "--", "sleep", "infinity"])
        path = f"/proc/{self.holder.pid}/ns/net"
        deadline = time.time() + 5
        while os.readlink(path) == os.readlink("/proc/self/ns/net") and time.time() < deadline:
            time.sleep(0.01)                          # until unshare has switched before exec'ing sleep
        if os.readlink(path) == os.readlink("/proc/self/ns/net"):
            self.holder.kill()
            raise RuntimeError(f"{name}: unshare --net did not give the function a namespace of its own")
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)
        subprocess.run(["nsenter", f"--net={path}", "--", "ip", "link", "set", "lo", "up"], check=True)

    def _listen(self, port: int, in_ns: bool) -> socket.socket:
        def make() -> socket.socket:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen(128)
            return s
        if in_ns:
            with inside(self.fd):
                s = make()
        else:
            s = make()
        self._listeners.append(s)
        return s

    def _serve(self, listener: socket.socket, port: int, connect_in_ns: bool) -> None:
        def connect() -> socket.socket:
            if connect_in_ns:
                with inside(self.fd):
                    out = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            else:
                out = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            out.connect(("127.0.0.1", port))
            return out

        def accept_forever() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return                             # closed
                try:
                    upstream = connect()
                except OSError:
                    conn.close()
                    continue
                threading.Thread(target=_relay, args=(conn, upstream), daemon=True).start()
        threading.Thread(target=accept_forever, name=f"netns-{self.name}-{port}", daemon=True).start()

    def forward_in(self, port: int) -> None:
        """host 127.0.0.1:port -> this namespace's 127.0.0.1:port (the function's watchdog)."""
        self._serve(self._listen(port, in_ns=False), port, connect_in_ns=True)

    def forward_out(self, ports: list[int]) -> None:
        """this namespace's 127.0.0.1:port -> the host's 127.0.0.1:port (S3, Kafka, PostgreSQL, ...)."""
        for port in sorted(set(ports)):
            self._serve(self._listen(port, in_ns=True), port, connect_in_ns=False)

    def connection(self) -> type:
        """An http.client connection class whose socket is created inside this namespace: the gateway dials
        straight in, with no relay threads between (forward_in stays, for anything else on the host)."""
        ns_fd = self.fd

        class NamespacedConnection(http.client.HTTPConnection):
            def connect(self) -> None:
                with inside(ns_fd):
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(self.timeout)
                try:
                    sock.connect((self.host, self.port))
                except OSError:
                    sock.close()
                    raise
                self.sock = sock
        return NamespacedConnection

    def accepting(self, port: int) -> bool:
        """Whether something in the namespace accepts TCP connections on 127.0.0.1:port."""
        with inside(self.fd):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.5)
        try:
            s.connect(("127.0.0.1", port))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def popen(self, cmd: list[str], **kw) -> subprocess.Popen:
        return subprocess.Popen(["nsenter", f"--net={self.path}", "--", *cmd], **kw)

    def close(self) -> None:
        for s in self._listeners:
            try:
                s.close()
            except OSError:
                pass
        if self.holder is not None:
            self.holder.terminate()
            try:
                self.holder.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.holder.kill()
        os.close(self.fd)
