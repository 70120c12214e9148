"""The one exception tree of Slack After Dark. Handlers map it to HTTP statuses in one place (`http_status`).

    AfterDarkError
    ├── BadInput            400  the caller sent something we cannot use
    │   ├── NotAnImage      415
    │   ├── TooLarge        413
    │   ├── MethodNotAllowed 405
    │   └── UnsafeURL       400  (SSRF guard)
    ├── Unauthorized        401  no or a wrong bearer token (WWW-Authenticate: Bearer)
    ├── Forbidden           403  authenticated, but not allowed to do this
    ├── RateLimited         429  too many votes from one principal (Retry-After)
    ├── NotFound            404  no such object (S3 key)
    ├── RegistryError       500
    │   ├── VersionNotFound 404
    │   ├── ArtifactCorrupt 500  (sha256 mismatch, unloadable model)
    │   └── Conflict        409  (a conditional write lost: key taken, ETag moved)
    ├── FetchFailed         502  the image URL answered with an error, or not at all
    │   └── FetchTimeout    504
    └── Unavailable         503  S3, Kafka or PostgreSQL is down, or no model is ready; nothing was acknowledged

Foreign errors (botocore, kafka-python, psycopg) are translated at the seams (layers.store, layers.events,
layers.db), so no other module catches them. An error may carry HTTP headers (`headers`), such as
Retry-After on a 429.
"""
from __future__ import annotations


class AfterDarkError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    @property
    def headers(self) -> dict[str, str]:
        return {}

    def to_dict(self) -> dict:
        body = {"error": self.code, "message": self.message}
        body.update({k: v for k, v in self.details.items() if v is not None})
        return body


class BadInput(AfterDarkError):
    status, code = 400, "bad_input"


class NotAnImage(BadInput):
    status, code = 415, "not_an_image"


class TooLarge(BadInput):
    status, code = 413, "too_large"


class MethodNotAllowed(BadInput):
    status, code = 405, "method_not_allowed"


class UnsafeURL(BadInput):
    status, code = 400, "unsafe_url"


class Unauthorized(AfterDarkError):
    status, code = 401, "unauthorized"

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="slack-after-dark"'}


class Forbidden(AfterDarkError):
    status, code = 403, "forbidden"


class RateLimited(AfterDarkError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, retry_after_s: int, **details: object) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **details)
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class NotFound(AfterDarkError):
    status, code = 404, "not_found"


class RegistryError(AfterDarkError):
    status, code = 500, "registry_error"


class VersionNotFound(RegistryError):
    status, code = 404, "version_not_found"


class ArtifactCorrupt(RegistryError):
    status, code = 500, "artifact_corrupt"


class Conflict(RegistryError):
    status, code = 409, "conflict"


class FetchFailed(AfterDarkError):
    status, code = 502, "fetch_failed"


class FetchTimeout(FetchFailed):
    status, code = 504, "fetch_timeout"


class Unavailable(AfterDarkError):
    status, code = 503, "unavailable"


def http_status(exc: BaseException) -> int:
    """The HTTP status for any exception: ours carry it, anything else is a 500."""
    return exc.status if isinstance(exc, AfterDarkError) else 500
