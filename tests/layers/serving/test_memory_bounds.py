"""Memory bounds: decoded pixels per request, the off-path queue in bytes, a download's overall deadline, and a
request body refused before it is read. Only loopback is contacted."""
from __future__ import annotations

import io
import threading
import time

import pytest
from PIL import Image

from layers.config import FetchSettings, Settings
from layers.errors import FetchTimeout, TooLarge
from layers.images import decode, pixel_budget
from layers.edge.intake import fetch_image
from layers.serving.offpath import OffPath
from tests.conftest import http


def png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 100, 50)).save(buf, "PNG")
    return buf.getvalue()


def jpeg(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 100, 50)).save(buf, "JPEG")
    return buf.getvalue()


def test_the_pixel_budget_follows_the_memory_limit_and_the_threads():
    assert pixel_budget(512, 8) == 512 * 2**20 // 2 // (8 * 8)                 # about 4.2 megapixels
    assert pixel_budget(256, 8) == pixel_budget(512, 8) // 2
    assert Settings.from_env({"MEMORY_LIMIT_MB": "512", "AFTERDARK_THREADS": "8"}).serving.max_pixels == pixel_budget(512, 8)
    assert Settings.from_env({}).serving.max_pixels == 40_000_000


def test_decoding_is_bounded_by_what_is_decoded():
    budget = 2_000_000
    with pytest.raises(TooLarge, match="pixels"):
        decode(png(2000, 1500), max_pixels=budget)                          # 3 Mpx of PNG: all of it decodes
    img = decode(jpeg(3000, 2000), draft_size=96, max_pixels=budget)          # 6 Mpx JPEG, decoded at 1/8 scale
    assert img.width * img.height <= budget
    assert decode(png(1000, 1000), max_pixels=budget).size == (1000, 1000)


def test_the_offpath_queue_is_bounded_in_bytes():
    gate = threading.Event()
    off = OffPath(maxsize=100, max_bytes=1000)
    assert off.submit("decoy", gate.wait, nbytes=600)                        # the worker holds this one
    assert off.submit("decoy", lambda: None, nbytes=300)
    assert not off.submit("decoy", lambda: None, nbytes=200)                 # 1100 > 1000: dropped
    stats = off.stats()
    assert stats["decoy.dropped"] == 1 and stats["bytes_held"] == 900
    gate.set()
    deadline = time.time() + 5
    while off.stats()["bytes_held"] and time.time() < deadline:
        time.sleep(0.05)
    assert off.stats()["bytes_held"] == 0 and off.submit("decoy", lambda: None, nbytes=1000)


@pytest.mark.parametrize("every", [9.0, 0.3])
def test_a_dripping_host_is_cut_off_at_the_deadline(every, image_server):
    policy = FetchSettings(allow=(image_server.split("//")[1],), read_timeout_s=10, deadline_s=1.5)
    t0 = time.monotonic()
    with pytest.raises(FetchTimeout, match="1.5 s|stalled"):
        fetch_image(f"{image_server}/drip?every={every}&n=50", policy)
    assert time.monotonic() - t0 < 4                                        # not n x every, not the read timeout


def test_a_body_over_the_limit_is_refused_before_it_is_read(gateway):
    body = b"\xff\xd8" + b"\0" * (17 * 1024 * 1024)
    status, _, reply = http("POST", f"{gateway}/function/fix?label=engineer", body, {"Content-Type": "image/jpeg"})
    assert status == 413 and reply["error"] == "too_large" and "16777216" in reply["message"], reply


def test_the_prediction_cache_is_bounded_and_counts():
    from layers.serving.cache import PredictionCache
    cache = PredictionCache(max_entries=2)
    cache.put("a", "m", 1, ("x", 0.9, {}))
    cache.put("b", "m", 1, ("y", 0.8, {}))
    assert cache.get("a", "m", 1) == ("x", 0.9, {})                    # a is now the most recent
    cache.put("c", "m", 1, ("z", 0.7, {}))                               # evicts b, the least recent
    assert cache.get("b", "m", 1) is None and cache.get("a", "m", 2) is None
    assert cache.stats() == {"entries": 2, "max_entries": 2, "hits": 1, "misses": 2}
