"""media: images from S3 through signed, expiring links (layers.edge.media), for Slack image blocks and the dating
app. No token: the link is the credential, for one object, until it expires.

    GET /function/media/<key>?exp=<unix time>&sig=<hex HMAC>     -> the image bytes (image/png or image/jpeg)
A forged, altered or expired link gets 403; a key outside media/, models/ and profiles/ images and the uploads
at images/<sha256>, 403; a signed key that no longer exists, 404.
"""
from urllib.parse import unquote

from layers.edge.chain import Chain, methods
from layers.edge.media import content_type
from layers.wiring import Wiring

W = Wiring.for_function("media")
API = Chain(methods("GET"))          # no token: the signed link is the credential


def media(req, caller) -> dict:
    key = unquote(req.path.lstrip("/"))
    W.links.verify(key, req.query.get("exp"), req.query.get("sig"))
    blob = W.store.get(key)                             # NotFound -> 404
    return {"statusCode": 200, "body": blob.body,
            "headers": {"Content-Type": content_type(key, blob.body), "Cache-Control": "private, max-age=3600",
                        "X-Content-Type-Options": "nosniff"}}


def handle(event, context):
    return API(event, media)
