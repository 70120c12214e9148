"""The one normalised request every handler and middleware reads: built once, at the edge (the template's
index.py), from whatever server carries it.

Example:
    req = Request.of("POST", "/status", {"user": "U1"}, {"Content-Type": "image/jpeg"}, b"...")
    req.headers.get("content-type")     # "image/jpeg": header names are case-insensitive
    req.content_type                    # "image/jpeg" (without parameters, lower-cased)
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Iterator


class Headers(Mapping[str, str]):
    """Request headers, read case-insensitively (HTTP header names are). The first value of a repeated header
    wins, as Flask's `headers.get` gives it."""

    def __init__(self, pairs: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        self._names: dict[str, str] = {}
        self._values: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
            if key not in self._values:
                self._names[key], self._values[key] = name, value

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._names[k] for k in self._values)

    def __len__(self) -> int:
        return len(self._values)


@dataclass(frozen=True)
class Request:
    method: str
    path: str                      # inside the function: "/" or "/status", "/signup", ...
    query: Mapping[str, str]       # the first value of each query parameter
    headers: Headers
    body: bytes
    content_type: str              # the media type, lower-cased, without parameters ("" when none)

    @classmethod
    def of(cls, method: str, path: str, query: Mapping[str, str] | Iterable[tuple[str, str]],
           headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes | None) -> "Request":
        hdrs = headers if isinstance(headers, Headers) else Headers(headers)
        params: dict[str, str] = {}
        for name, value in (query.items() if isinstance(query, Mapping) else query):
            params.setdefault(name, value)
        ctype = (hdrs.get("Content-Type") or "").split(";")[0].strip().lower()
        return cls(method.upper(), path or "/", params, hdrs, body or b"", ctype)
