"""Signed media links: only what was signed, only until it expires, only images under the served prefixes."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from layers.config import MediaSettings
from layers.errors import BadInput, Forbidden, Unavailable
from layers.edge.media import MediaLinks, servable
from layers.slack.blocks import compare_message

LINKS = MediaLinks(MediaSettings(signing_key="k" * 32, public_url="https://gw.example", ttl_s=60))


def parts(url: str) -> tuple[str, str, str]:
    u = urlsplit(url)
    q = parse_qs(u.query)
    return u.path.removeprefix("/function/media/"), q["exp"][0], q["sig"][0]


def test_a_link_verifies_until_it_expires():
    key, exp, sig = parts(LINKS.url("media/abc.png", now=1000))
    assert key == "media/abc.png" and exp == "1060"
    LINKS.verify(key, exp, sig, now=1059)
    with pytest.raises(Forbidden, match="expired"):
        LINKS.verify(key, exp, sig, now=1061)


@pytest.mark.parametrize("change", ["key", "exp", "sig", "missing"])
def test_a_changed_link_is_refused(change):
    key, exp, sig = parts(LINKS.url("media/abc.png", now=1000))
    if change == "key":
        key = "media/abd.png"
    elif change == "exp":
        exp = "99999999999"
    elif change == "sig":
        sig = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    else:
        sig = None
    with pytest.raises(Forbidden):
        LINKS.verify(key, exp, sig, now=1001)


def test_only_images_under_the_served_prefixes():
    assert servable("models/engineer/3/report.png") and servable("profiles/ab.jpg")
    for key in ("control/routing.json", "models/engineer/3/head.tflite", "media/../control/x.png", "/media/a.png",
                "datasets/synthetic/engineer/a.jpg"):
        assert not servable(key)
        with pytest.raises(BadInput):
            LINKS.url(key)
        with pytest.raises(Forbidden):
            LINKS.verify(key, "99999999999", LINKS.signature(key, 99999999999))   # even when signed


def test_no_signing_key_no_links():
    with pytest.raises(Unavailable):
        MediaLinks(MediaSettings(signing_key=None)).url("media/a.png")


def test_the_compare_message_shows_the_chart_only_from_a_public_address():
    report = {"a": {"version": 1, "accuracy": 0.87, "fix_accuracy": None, "parent": None},
              "b": {"version": 3, "accuracy": 0.88, "fix_accuracy": 0.9, "parent": 1},
              "replay": {"images": 12, "labelled": 4, "agreement": 0.75, "accuracy": {"1": 0.5, "3": 1.0}}}
    local = compare_message("engineer", {**report, "chart_url": "http://127.0.0.1:8080/function/media/media/a.png"})
    assert [b["type"] for b in local.blocks] == ["section", "context"]
    assert "100.0%" in local.blocks[0]["text"]["text"] and "agree on 75.0%" in local.blocks[1]["elements"][0]["text"]
    public = compare_message("engineer", {**report, "chart_url": "https://93.184.216.34/function/media/media/a.png"})
    assert public.blocks[-1]["type"] == "image"
