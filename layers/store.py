"""The S3 seam: a small BlobStore over boto3, with conditional reads and writes.

Example:
    store = BlobStore(Settings.from_env().s3)
    etag = store.put("control/routing.json", body, if_none_match="*")   # create-only
    blob = store.get("control/routing.json", if_none_match=etag)       # None: unchanged (304)
    store.put("control/routing.json", new_body, if_match=etag)          # Conflict if someone wrote first

IMPORTANT:
  * botocore errors never leave this module: a lost conditional write is `Conflict`, a missing key is
    `NotFound`, and a store that cannot be reached is `Unavailable`.
  * ETags are returned without quotes.
  * A BlobStore is thread-safe (boto3 clients are).

Run `python -m layers.store ensure-bucket` to create the bucket (dev/start.sh does).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import quote

import boto3
import botocore.exceptions
import urllib3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from layers.config import S3Settings, Settings
from layers.errors import Conflict, NotFound, Unavailable


@dataclass(frozen=True)
class Blob:
    key: str
    body: bytes
    etag: str


def _status(err: botocore.exceptions.ClientError) -> int:
    return int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


class BlobStore:
    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self._s3 = boto3.client(
            "s3",
            endpoint_url=settings.endpoint,
            aws_access_key_id=settings.access_key,
            aws_secret_access_key=settings.secret_key,
            region_name=settings.region,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                connect_timeout=settings.connect_timeout_s,
                read_timeout=settings.read_timeout_s,
                retries={"max_attempts": 2, "mode": "standard"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        self._credentials = Credentials(settings.access_key, settings.secret_key)
        self._pool = urllib3.PoolManager(maxsize=8, retries=False, timeout=urllib3.Timeout(
            connect=settings.connect_timeout_s, read=settings.read_timeout_s))

    # -- translation of foreign errors, in one place -------------------------------------------------
    def _call(self, what: str, key: str, fn, **kwargs):
        try:
            return fn(**kwargs)
        except botocore.exceptions.ClientError as err:
            status = _status(err)
            if status == 304:
                return None
            if status == 412:
                raise Conflict(f"conditional {what} on {key} lost (precondition failed)", key=key) from err
            if status == 409:
                raise Conflict(f"{what} on {key} conflicted with a concurrent write", key=key) from err
            if status == 404:
                raise NotFound(f"no object {key}", key=key) from err
            if status >= 500:
                raise Unavailable(f"object store error on {what} {key}: {status}") from err
            raise
        except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError,
                botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError) as err:
            raise Unavailable(f"object store unreachable at {self.settings.endpoint}: {err}") from err

    # -- the seam -------------------------------------------------------------------------------------
    def get(self, key: str, if_none_match: str | None = None) -> Blob | None:
        """The object, or None when `if_none_match` matches its current ETag (HTTP 304)."""
        kwargs = {"Bucket": self.bucket, "Key": key}
        if if_none_match:
            kwargs["IfNoneMatch"] = f'"{if_none_match}"'
        resp = self._call("get", key, self._s3.get_object, **kwargs)
        if resp is None:
            return None
        return Blob(key=key, body=resp["Body"].read(), etag=resp["ETag"].strip('"'))

    def put(self, key: str, body: bytes, *, if_none_match: str | None = None, if_match: str | None = None,
            content_type: str = "application/octet-stream") -> str:
        """Write `body`; `if_none_match="*"` makes it create-only, `if_match=etag` a compare-and-swap.
        Returns the new ETag. Raises Conflict when the condition fails."""
        kwargs = {"Bucket": self.bucket, "Key": key, "Body": body, "ContentType": content_type}
        if if_none_match:
            kwargs["IfNoneMatch"] = if_none_match
        if if_match:
            kwargs["IfMatch"] = f'"{if_match}"'
        resp = self._call("put", key, self._s3.put_object, **kwargs)
        return resp["ETag"].strip('"')

    def put_if_absent(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> bool:
        """Create-only write for content-addressed keys, where "already there" means "the same bytes are
        there": True when this call wrote it."""
        if self.exists(key):
            return False
        try:
            self.put(key, body, if_none_match="*", content_type=content_type)
            return True
        except Conflict:
            return False

    def create(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> bool:
        """Create-only write in ONE round trip (a conditional PUT, If-None-Match: *): True when this call wrote
        it, False when the key was there. For content-addressed keys that are usually new (a /predict decoy,
        one per request): it is signed by botocore (SigV4) and sent on a pooled urllib3 connection, because the
        boto3 client's request pipeline costs about twice the CPU per PUT (1.6-2.3 ms against 0.7-1.1 ms here,
        bench/RESULTS.md), under the GIL of the request it mirrors. put_if_absent asks first, for bodies that
        are often there already."""
        if not (self.settings.access_key and self.settings.secret_key):
            try:                                       # no static keys (an IAM role): the client's own way
                self.put(key, body, if_none_match="*", content_type=content_type)
                return True
            except Conflict:
                return False
        url = f"{self.settings.endpoint.rstrip('/')}/{self.bucket}/{quote(key, safe='/')}"
        request = AWSRequest(method="PUT", url=url, data=body,
                             headers={"If-None-Match": "*", "Content-Type": content_type})
        S3SigV4Auth(self._credentials, "s3", self.settings.region).add_auth(request)
        try:
            resp = self._pool.request("PUT", url, body=body, headers=dict(request.headers.items()))
        except urllib3.exceptions.HTTPError as err:
            raise Unavailable(f"object store unreachable at {self.settings.endpoint}: {err}") from err
        if resp.status == 412:
            return False
        if resp.status // 100 != 2:
            raise Unavailable(f"object store refused the write of {key}: {resp.status} {resp.data[:200]!r}")
        return True

    def exists(self, key: str) -> bool:
        try:
            self._call("head", key, self._s3.head_object, Bucket=self.bucket, Key=key)
            return True
        except NotFound:
            return False

    def keys(self, prefix: str) -> Iterator[str]:
        return (key for key, _ in self.listing(prefix))

    def listing(self, prefix: str) -> Iterator[tuple[str, float]]:
        """(key, last modified as a Unix time) of every object under `prefix`."""
        paginator = self._s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield obj["Key"], obj["LastModified"].timestamp()
        except botocore.exceptions.EndpointConnectionError as err:
            raise Unavailable(f"object store unreachable at {self.settings.endpoint}") from err

    def delete(self, key: str) -> None:
        self._call("delete", key, self._s3.delete_object, Bucket=self.bucket, Key=key)

    def expire(self, prefix: str, days: int) -> bool:
        """Ask the store to delete objects under `prefix` `days` after they were written (an S3 lifecycle
        rule; MinIO and S3 keep it), beside the bucket's other rules, which stay. False when the store does not
        support lifecycle rules or this client may not set them: then `delete_older_than` is the sweeper that
        does the same."""
        rule = {"ID": f"expire-{prefix.strip('/')}", "Filter": {"Prefix": prefix}, "Status": "Enabled",
                "Expiration": {"Days": days}}
        try:
            try:
                rules = self._s3.get_bucket_lifecycle_configuration(Bucket=self.bucket).get("Rules", [])
            except botocore.exceptions.ClientError as err:
                if "NoSuchLifecycleConfiguration" not in str(err):
                    raise
                rules = []
            rules = [r for r in rules if r.get("ID") != rule["ID"]] + [rule]
            self._s3.put_bucket_lifecycle_configuration(Bucket=self.bucket, LifecycleConfiguration={"Rules": rules})
            return True
        except botocore.exceptions.ClientError as err:
            if _status(err) in (400, 403, 404, 501) or "NotImplemented" in str(err):
                return False
            raise

    def delete_older_than(self, prefix: str, max_age_s: float, now: float | None = None) -> int:
        """Delete the objects under `prefix` written more than `max_age_s` ago; how many."""
        cutoff = (time.time() if now is None else now) - max_age_s
        old = [key for key, modified in self.listing(prefix) if modified < cutoff]
        for key in old:
            self.delete(key)
        return len(old)

    def ensure_bucket(self) -> None:
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except botocore.exceptions.ClientError as err:
            if _status(err) != 404:
                raise
            self._s3.create_bucket(Bucket=self.bucket)

    def ping(self) -> bool:
        try:
            self._s3.head_bucket(Bucket=self.bucket)
            return True
        except Exception:
            return False


def main(argv: list[str]) -> int:
    if argv[1:] == ["ensure-bucket"]:
        from layers.registry.keys import DECOY_PREFIX
        settings = Settings.from_env().s3
        store = BlobStore(settings)
        store.ensure_bucket()
        if settings.bucket != "mlflow":         # the functions' bucket: /predict's images expire (docs/formats.md)
            kept = store.expire(DECOY_PREFIX, settings.decoy_retention_days)
            print(f"{DECOY_PREFIX} expires after {settings.decoy_retention_days} days: "
                  f"{'a lifecycle rule' if kept else 'no lifecycle support here; the trainer sweeps it'}", file=sys.stderr)
        return 0
    print("usage: python -m layers.store ensure-bucket", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
