"""Profile photos no profile references go once they are an hour old; young or referenced ones stay."""
from __future__ import annotations

from layers.matching.sweeper import PhotoSweeper
from tests.doubles import MemoryStore


class Rows:
    def __init__(self, *keys: str) -> None:
        self.keys = set(keys)

    def photo_keys(self) -> set[str]:
        return set(self.keys)

    def photo_in_use(self, key: str, excluding: str) -> bool:
        return key in self.keys


def test_an_orphan_photo_is_swept_after_an_hour_and_nothing_else():
    store = MemoryStore()
    for name in ("orphan-old", "orphan-young", "kept-old", "other"):
        store.put(f"profiles/{name}.jpg", b"jpeg")
    store.put("images/not-a-profile.jpg", b"jpeg")
    now = store.modified["profiles/orphan-young.jpg"] + 10
    for key in ("profiles/orphan-old.jpg", "profiles/kept-old.jpg", "images/not-a-profile.jpg"):
        store.modified[key] = now - 3601            # a sign-up that died before its row, an hour ago
    sweeper = PhotoSweeper(store, Rows("profiles/kept-old.jpg", "profiles/other.jpg"))
    assert sweeper.sweep(now=now) == ["profiles/orphan-old.jpg"]
    assert not store.exists("profiles/orphan-old.jpg")
    assert all(store.exists(k) for k in ("profiles/orphan-young.jpg", "profiles/kept-old.jpg", "images/not-a-profile.jpg"))


def test_a_photo_referenced_between_the_listing_and_the_delete_stays():
    store = MemoryStore()
    store.put("profiles/p.jpg", b"jpeg")

    class Late(Rows):                    # the row is committed after the sweep read the references
        def photo_in_use(self, key, excluding):
            return True
    sweeper = PhotoSweeper(store, Late())
    assert sweeper.sweep(now=store.modified["profiles/p.jpg"] + 7200) == [] and store.exists("profiles/p.jpg")
