"""media: images from S3 through signed, expiring links (layers.edge.media), for Slack image blocks and the dating
app. No token: the link is the credential, for one object, until it expires.

    GET /function/media/<key>?exp=<unix time>&sig=<hex HMAC>     -> the image bytes (image/png or image/jpeg)
A forged, altered or expired link gets 403; a key outside media/, models/ and profiles/ images and the uploads
at images/<sha256>, 403; a signed key that no longer exists, 404.
"""
import logging
import os
from urllib.parse import unquote

from layers.config import Settings
from layers.edge.http import allow_methods, respond
from layers.edge.media import MediaLinks, content_type
from layers.store import BlobStore

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
SETTINGS = Settings.from_env()
LINKS = MediaLinks(SETTINGS.media)
STORE = BlobStore(SETTINGS.s3)


def media(event) -> dict:
    allow_methods(event, "GET")
    key = unquote(event.path.lstrip("/"))
    expires = event.query.get("exp")
    LINKS.verify(key, expires, event.query.get("sig"))
    blob = STORE.get(key)                               # NotFound -> 404
    return {"statusCode": 200, "body": blob.body,
            "headers": {"Content-Type": content_type(key, blob.body), "Cache-Control": "private, max-age=3600",
                        "X-Content-Type-Options": "nosniff"}}


def handle(event, context):
    return respond(lambda: media(event))
