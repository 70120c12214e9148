"""Deleting a profile when the process dies half-way: the photo goes first, so a retried delete finishes the
job, and a deleted profile's photo is never left behind (in-memory store, a profiles table double)."""
from __future__ import annotations

from datetime import datetime

import pytest

from layers.matching.app import AfterDark
from layers.matching.rules import Profile
from layers.edge.media import MediaLinks
from layers.config import MediaSettings
from tests.doubles import MemoryStore


class Crash(Exception):
    pass


class Profiles:
    """The `profiles` table's contract as AfterDark.delete uses it; `crash_on_delete` dies before the row goes."""

    def __init__(self, *profiles: Profile) -> None:
        self.rows = {p.principal: p for p in profiles}
        self.crash_on_delete = False

    def get(self, principal):
        return self.rows.get(principal)

    def delete(self, principal):
        if self.crash_on_delete:
            raise Crash("the process died here")
        return self.rows.pop(principal, None)

    def photo_in_use(self, key, excluding):
        return any(p.photo_key == key and p.principal != excluding for p in self.rows.values())


def profile(principal: str, key: str) -> Profile:
    return Profile(principal, "x", "0" * 64, key, "engineer", 0.9, False, datetime(2026, 1, 1), {}, [1, 2])


def app(profiles, store) -> AfterDark:
    return AfterDark(None, profiles, store, None, MediaLinks(MediaSettings()), ("engineer", "non_engineer"), 10**6)


def test_a_delete_that_dies_after_the_photo_is_finished_by_a_retry():
    store = MemoryStore()
    store.put("profiles/a.jpg", b"jpeg")
    profiles = Profiles(profile("api:t:ada", "profiles/a.jpg"))
    profiles.crash_on_delete = True
    with pytest.raises(Crash):
        app(profiles, store).delete("api:t:ada")
    assert not store.exists("profiles/a.jpg")                 # the photo never outlives the attempt
    assert profiles.get("api:t:ada") is not None             # the profile is still there to be deleted again
    profiles.crash_on_delete = False
    done = app(profiles, store).delete("api:t:ada")
    assert done.profile and profiles.get("api:t:ada") is None


def test_a_shared_photo_stays_for_the_other_profile():
    store = MemoryStore()
    store.put("profiles/s.jpg", b"jpeg")
    profiles = Profiles(profile("api:t:ada", "profiles/s.jpg"), profile("api:t:bo", "profiles/s.jpg"))
    assert app(profiles, store).delete("api:t:ada").photo == "kept: another profile uses it"
    assert store.exists("profiles/s.jpg")
    assert app(profiles, store).delete("api:t:bo").photo == "deleted" and not store.exists("profiles/s.jpg")
