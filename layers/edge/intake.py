"""Image intake: what a request may carry, and SSRF-safe URL fetching.

Accepted inputs (`parse_image_input`):
    Content-Type: image/*             the raw image bytes in the body
    application/json                  {"image_url": "https://..."} or {"image_b64": "..."} (+ other fields)
    text/plain or ?url=               an http(s) URL

Example:
    inp = parse_image_input(body, headers, query, limits)     # ImageInput(data=None, url="https://...", fields={...})
    data = fetch_image(inp.url, policy)                       # bytes, fetched safely

SSRF rules (`FetchSettings` in layers.config, `check_address` here):
  * only http and https, on any port; a host name is resolved ONCE and every address must be public:
    private, loopback, link-local, multicast, reserved, unspecified, shared (CGNAT) and cloud-metadata
    addresses are refused, for IPv4 and IPv6 (IPv4-mapped and NAT64 forms included);
  * the connection goes to the checked IP (Host header and TLS SNI/certificate keep the name), so DNS
    rebinding cannot swap the address between check and connect;
  * each redirect is checked again; at most `max_redirects`;
  * connect and read timeouts, and one deadline for the whole download (`deadline_s`, redirects included):
    a host that drips a byte every few seconds is cut off; the body is streamed and cut at `max_bytes`.
An explicit allow-list (`FetchSettings.allow`, off by default; env FETCH_ALLOW) admits named host[:port] entries or CIDRs,
which `make run` and the tests use for a local image server.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import socket
import time
from dataclasses import dataclass, field, replace
from typing import Mapping
from urllib.parse import urljoin, urlsplit

import urllib3

from layers.config import FetchSettings
from layers.errors import BadInput, FetchFailed, FetchTimeout, NotAnImage, TooLarge, UnsafeURL

DEFAULT_MAX_BYTES = FetchSettings.max_bytes
METADATA_ADDRESSES = {ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192", "168.63.129.16")}
NAT64 = ipaddress.ip_network("64:ff9b::/96")
SHARED = ipaddress.ip_network("100.64.0.0/10")


def check_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why this address must not be fetched from, or None when it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return check_address(ip.ipv4_mapped)
        if ip in NAT64:
            return check_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None:
            return check_address(ip.sixtofour)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for attr, why in (("is_loopback", "loopback"), ("is_unspecified", "unspecified"), ("is_link_local", "link-local"),
                      ("is_multicast", "multicast"), ("is_private", "private"), ("is_reserved", "reserved")):
        if getattr(ip, attr):
            return f"a {why} address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in SHARED:
        return "a shared (carrier-grade NAT) address"
    if not ip.is_global:
        return "not a public address"
    return None


def _allowed(host: str, port: int, ips: list, allow: tuple[str, ...]) -> bool:
    for entry in allow:
        if entry in (host, f"{host}:{port}"):
            return True
        try:
            net = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        if ips and all(ip in net for ip in ips):
            return True
    return False


def resolve(host: str, port: int) -> list:
    """Every address `host` stands for. IP literals, including legacy IPv4 forms such as 2130706433 or
    0x7f.1, are parsed here (as the C library would), never sent to DNS."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        return [ipaddress.IPv4Address(socket.inet_aton(host))]
    except OSError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise BadInput(f"cannot resolve host {host!r}") from err
    return sorted({ipaddress.ip_address(i[4][0].split("%")[0]) for i in infos}, key=str)


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    ip: str


def vet(url: str, policy: FetchSettings) -> Target:
    """Parse and check a URL; returns the address to connect to. Raises BadInput / UnsafeURL."""
    if not isinstance(url, str) or len(url) > 4096:
        raise BadInput("the image URL must be a string of at most 4096 characters")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise BadInput(f"only http and https URLs are accepted, not {parts.scheme or 'no scheme'!r}", url=url)
    host = parts.hostname
    if not host:
        raise BadInput("the URL has no host", url=url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as err:
        raise BadInput("the URL has an invalid port", url=url) from err
    ips = resolve(host, port)
    if not ips:
        raise BadInput(f"host {host!r} has no address", url=url)
    if not _allowed(host, port, ips, policy.allow):
        for ip in ips:
            why = check_address(ip)
            if why:
                raise UnsafeURL(f"refusing to fetch {host}: it resolves to {ip}, {why}", url=url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port, path, str(ips[0]))


def is_public_url(url: str) -> bool:
    """Whether anyone on the internet could load this URL (e.g. Slack, for an image block): http(s) and
    every address public. The allow-list does not count."""
    try:
        vet(url, FetchSettings())
        return True
    except BadInput:
        return False


def fetch_image(url: str, policy: FetchSettings, hosts: tuple[str, ...] | None = None,
                headers: Mapping[str, str] | None = None) -> bytes:
    """GET `url` under the SSRF rules; returns the body (at most policy.max_bytes). With `hosts` ("host" or
    "host:port"), every hop, redirects included, must be one of them: then `headers` (a bot token, say) go
    only where they belong."""
    deadline = time.monotonic() + policy.deadline_s

    def left(limit: float) -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchTimeout(f"the image took longer than {policy.deadline_s:g} s to download", url=url)
        return min(limit, remaining)

    for _ in range(policy.max_redirects + 1):
        t = vet(url, policy)
        if hosts is not None and t.host not in hosts and f"{t.host}:{t.port}" not in hosts:
            raise UnsafeURL(f"refusing to fetch from {t.host}: only {', '.join(hosts)} may serve this", url=url)
        timeout = urllib3.Timeout(connect=left(policy.connect_timeout_s), read=left(policy.read_timeout_s))
        kwargs = dict(host=t.ip, port=t.port, timeout=timeout, retries=False, maxsize=1)
        if t.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(server_hostname=t.host, assert_hostname=t.host, **kwargs)
        else:
            pool = urllib3.HTTPConnectionPool(**kwargs)
        host_header = t.host if t.port in (80, 443) else f"{t.host}:{t.port}"
        try:
            resp = pool.urlopen("GET", t.path, headers={"Host": host_header, "User-Agent": "slack-after-dark/1",
                                                        "Accept": "image/*", **(headers or {})},
                                redirect=False, preload_content=False, assert_same_host=False)
        except urllib3.exceptions.TimeoutError as err:
            raise FetchTimeout(f"the image host {t.host} did not answer in time", url=url) from err
        except urllib3.exceptions.HTTPError as err:
            raise FetchFailed(f"could not fetch the image from {t.host}: {err.__class__.__name__}", url=url) from err
        try:
            if resp.status in (301, 302, 303, 307, 308):
                location = resp.headers.get("Location")
                if not location:
                    raise FetchFailed(f"{t.host} redirected without a Location", url=url)
                url = urljoin(url, location)
                continue
            if resp.status != 200:
                raise FetchFailed(f"the image URL answered HTTP {resp.status}", url=url, upstream_status=resp.status)
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > policy.max_bytes:
                raise TooLarge(f"the image is {declared} bytes; the limit is {policy.max_bytes}", url=url)
            chunks, size = [], 0
            sock = resp.connection.sock if resp.connection is not None else None
            try:
                while True:
                    if sock is not None:              # each read waits at most what is left of the deadline
                        sock.settimeout(left(policy.read_timeout_s))
                    chunk = resp.read1(64 * 1024)     # returns as soon as any bytes arrive
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > policy.max_bytes:
                        raise TooLarge(f"the image is larger than the limit of {policy.max_bytes} bytes", url=url)
                    chunks.append(chunk)
                    left(policy.read_timeout_s)
            except (urllib3.exceptions.TimeoutError, socket.timeout) as err:
                left(policy.read_timeout_s)           # past the deadline: says so
                raise FetchTimeout(f"the image host {t.host} stalled while sending", url=url) from err
            except urllib3.exceptions.HTTPError as err:
                raise FetchFailed(f"the download from {t.host} broke off", url=url) from err
            return b"".join(chunks)
        finally:
            resp.release_conn()
            pool.close()
    raise UnsafeURL(f"more than {policy.max_redirects} redirects", url=url)


@dataclass
class ImageInput:
    """What a request asked about: image bytes, or a URL still to fetch; plus the other fields it carried."""
    data: bytes | None = None
    url: str | None = None
    fields: dict = field(default_factory=dict)
    policy: FetchSettings | None = None     # how a URL is fetched (image_of sets it)

    def content(self) -> bytes:
        """The image's bytes: those the request carried, or the URL's, fetched now under the SSRF rules."""
        if self.data is not None:
            return self.data
        return fetch_image(self.url or "", self.policy or FetchSettings())


def image_of(req, policy: FetchSettings) -> ImageInput:
    """What a normalised request (layers.edge.request) carries about an image; nothing is fetched yet, so a
    caller may refuse the request (a rate limit, a bad label) before any download."""
    return replace(parse_image_input(req.body, req.headers, req.query, policy.max_bytes), policy=policy)


def parse_image_input(body: bytes, headers: Mapping[str, str], query: Mapping[str, str],
                      max_bytes: int = DEFAULT_MAX_BYTES) -> ImageInput:
    ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    fields = {k: v for k, v in query.items()}
    if len(body) > max_bytes:
        raise TooLarge(f"the request body is {len(body)} bytes; the limit is {max_bytes}")
    if ctype.startswith("image/") or ctype == "application/octet-stream":
        if not body:
            raise BadInput("the body is empty: send the image bytes")
        return ImageInput(data=body, fields=fields)
    if ctype == "application/json":
        try:
            doc = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise BadInput(f"the body is not valid JSON: {err}") from err
        if not isinstance(doc, dict):
            raise BadInput('the JSON body must be an object such as {"image_url": "https://..."}')
        fields.update({k: v for k, v in doc.items() if k not in ("image_url", "image_b64")})
        if doc.get("image_b64"):
            try:
                data = base64.b64decode(doc["image_b64"], validate=True)
            except (binascii.Error, ValueError, TypeError) as err:
                raise BadInput("image_b64 is not valid base64") from err
            if len(data) > max_bytes:
                raise TooLarge(f"the image is {len(data)} bytes; the limit is {max_bytes}")
            return ImageInput(data=data, fields=fields)
        if doc.get("image_url"):
            return ImageInput(url=str(doc["image_url"]), fields=fields)
        raise BadInput('the JSON body needs "image_url" or "image_b64"')
    if ctype in ("text/plain", "") and body.strip():
        return ImageInput(url=body.decode("utf-8", "replace").strip(), fields=fields)
    if query.get("url") or query.get("image_url"):
        return ImageInput(url=query.get("url") or query.get("image_url"), fields=fields)
    if ctype and ctype not in ("text/plain",):
        raise NotAnImage(f"unsupported Content-Type {ctype!r}: send image/*, application/json or a URL")
    raise BadInput("no image: send image bytes (Content-Type: image/*), JSON with image_url or image_b64, or ?url=")
