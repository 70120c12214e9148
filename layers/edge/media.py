"""Signed, expiring links to images kept in S3, for Slack (which needs a public URL to show an image) and the
dating app. The `media` function serves them; anyone with a valid link may fetch that one object until it
expires, and nothing else.

Example:
    links = MediaLinks(settings.media)
    key = links.keep(store, png_bytes, "image/png")     # media/<sha256>.png, content-addressed
    url = links.url(key)       # https://gateway/function/media/media/<sha256>.png?exp=1767225600&sig=<hex>
    links.verify(key, exp, sig)                          # Forbidden when forged, tampered with or expired

The signature is HMAC-SHA256 over "<key>\\n<exp>" with the media signing key (secret media-signing-key), in
hex. Only image keys under SERVED_PREFIXES (and images/<sha256>, the content-addressed uploads that votes and
the review channel show) can be signed or served: a leaked key signs nothing else in the bucket.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import time
from urllib.parse import quote, urlencode

from layers.config import MediaSettings
from layers.errors import BadInput, Forbidden, Unavailable
from layers.images import sha256_hex
from layers.store import BlobStore

SERVED_PREFIXES = ("media/", "models/", "profiles/")
SERVED_SUFFIXES = (".png", ".jpg", ".jpeg")
TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
UPLOAD = re.compile(r"^images/[0-9a-f]{64}$")
MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"GIF8", "image/gif"))


def servable(key: str) -> bool:
    if UPLOAD.fullmatch(key):
        return True
    return (key.startswith(SERVED_PREFIXES) and key.lower().endswith(SERVED_SUFFIXES) and ".." not in key
            and "//" not in key and not key.startswith("/"))


def content_type(key: str, body: bytes = b"") -> str:
    """By the key's suffix; an upload (no suffix) by its first bytes (anything else: octet-stream)."""
    for suffix, kind in TYPES.items():
        if key.lower().endswith(suffix):
            return kind
    if body[:12].startswith(b"RIFF") and body[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in MAGIC if body.startswith(magic)), "application/octet-stream")


class MediaLinks:
    def __init__(self, settings: MediaSettings) -> None:
        self.settings = settings

    def _key(self) -> bytes:
        if not self.settings.signing_key:
            raise Unavailable("media links are not configured (secret media-signing-key)")
        return self.settings.signing_key.encode()

    def signature(self, key: str, exp: int) -> str:
        return hmac.new(self._key(), f"{key}\n{exp}".encode(), hashlib.sha256).hexdigest()

    def url(self, key: str, now: float | None = None, ttl_s: int | None = None) -> str:
        """A signed link to `key`, valid for `ttl_s` (default: the settings' ttl_s)."""
        if not servable(key):
            raise BadInput(f"{key!r} is not an image the media function serves")
        exp = int((now or time.time()) + (self.settings.ttl_s if ttl_s is None else ttl_s))
        return (f"{self.settings.public_url}/function/media/{quote(key)}?"
                f"{urlencode({'exp': exp, 'sig': self.signature(key, exp)})}")

    def verify(self, key: str, exp: str | None, sig: str | None, now: float | None = None) -> None:
        if not servable(key):
            raise Forbidden("this is not an image the media function serves")
        if not exp or not sig or not (exp.isascii() and exp.isdigit() and len(exp) <= 12):
            raise Forbidden("a media link needs exp and sig")         # isdigit() alone admits "²", which int() refuses
        if not hmac.compare_digest(self.signature(key, int(exp)).encode(), sig.encode("utf-8", "replace")):
            raise Forbidden("the link's signature does not match")
        if int(exp) < (now or time.time()):
            raise Forbidden("the link has expired")

    @staticmethod
    def keep(store: BlobStore, data: bytes, kind: str = "image/png") -> str:
        """Store generated image bytes content-addressed under media/ (once) and return the key."""
        key = f"media/{sha256_hex(data)}{'.png' if kind == 'image/png' else '.jpg'}"
        store.put_if_absent(key, data, content_type=kind)
        return key
