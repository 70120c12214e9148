"""Profile photos that no profile references are deleted once they are an hour old.

    sweeper = PhotoSweeper(store, profiles).start()     # a daemon thread: a sweep every 10 minutes
    sweeper.sweep()                                    # one pass; the keys it deleted

Why: a sign-up stores its photo before its row, and drops the photo it replaced after; a crash or a database
error in between leaves a photo that `delete` can never find, since no row names it. An hour is far longer
than any sign-up, so a photo that young may still be about to get its row. A sign-up stores its photo again
after its row is committed (layers.matching.app), so a sweep that deletes an old, unreferenced photo just as
a new sign-up reuses it is repaired by that sign-up; a sweep re-reads the reference right before each delete.
"""
from __future__ import annotations

import logging
import threading
import time

from layers.matching.profiles import Profiles
from layers.store import BlobStore

PREFIX = "profiles/"
log = logging.getLogger("afterdark.sweeper")


class PhotoSweeper:
    def __init__(self, store: BlobStore, profiles: Profiles, min_age_s: float = 3600, every_s: float = 600) -> None:
        self.store, self.profiles, self.min_age_s, self.every_s = store, profiles, min_age_s, every_s

    def sweep(self, now: float | None = None) -> list[str]:
        referenced = self.profiles.photo_keys()
        cutoff = (time.time() if now is None else now) - self.min_age_s
        gone = []
        for key, modified in self.store.listing(PREFIX):
            if modified < cutoff and key not in referenced and not self.profiles.photo_in_use(key, excluding=""):
                self.store.delete(key)
                gone.append(key)
        if gone:
            log.info("swept %d profile photos no profile references", len(gone))
        return gone

    def start(self) -> "PhotoSweeper":
        def loop():
            while True:
                time.sleep(self.every_s)
                try:
                    self.sweep()
                except Exception:                     # a store or database outage: the next pass tries again
                    log.exception("photo sweep failed")
        threading.Thread(target=loop, name="photo-sweeper", daemon=True).start()
        return self
