"""The model runtime of a function process: serves the versions the control document names, reloads them
by version key without a restart, and never serves an artifact it has not verified.

Example:
    runtime = ModelRuntime(registry, "engineer", settings.serving).start()   # loads at start-up
    snap = runtime.snapshot()                    # an immutable view: route + ready versions
    loaded = snap.versions[3]                    # holding it keeps v3 alive even if a reload drops it
    probs = loaded.predict(batch)

How a reload works (like TF Serving's source/loader/manager):
  * source:  a poller GETs control/routing.json with If-None-Match every `poll_s`; a 304 costs ~1 ms. The
             document names the complete set of versions wanted (weights + mirror + rendezvous).
  * loader:  for a new version (layers.serving.loader): metadata -> head.tflite and its shared backbone
             from the local cache or S3 -> sha256 verified -> LiteRT interpreters built -> one warm-up
             inference. Only then is it ready.
  * policy:  a new route takes over only once every version it sends traffic to is ready; until then the
             previous route keeps serving. `to_unload` (pure) drops versions no longer wanted, but never the
             last ready ones. A failed load is logged, kept out, and retried after `retry_s`.
  * swap:    one reference (`_snapshot`) is replaced; requests in flight keep the Snapshot they started with.

IMPORTANT: a LiteRT Interpreter is not thread-safe. Each loaded part owns `interpreters` of them in a pool;
a request leases one for the duration of its invocation (layers.serving.loader).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from layers.config import ServingSettings
from layers.errors import AfterDarkError
from layers.registry import CONTROL_KEY, ControlDoc, ModelRoute, Registry
from layers.serving.loader import Loaded, Loader

log = logging.getLogger("afterdark.runtime")


@dataclass(frozen=True)
class Snapshot:
    route: ModelRoute = field(default_factory=ModelRoute)
    versions: dict[int, Loaded] = field(default_factory=dict)

    @property
    def ready(self) -> frozenset[int]:
        return frozenset(self.versions)


def to_unload(wanted: set[int], ready: set[int]) -> set[int]:
    """Versions to drop: those no longer wanted, unless that would leave nothing wanted ready to serve."""
    if not ready & wanted:
        return set()
    return ready - wanted


class ModelRuntime:
    def __init__(self, registry: Registry, model: str, settings: ServingSettings) -> None:
        self.registry, self.model, self.settings = registry, model, settings
        self._snapshot = Snapshot()
        self._desired = ModelRoute()            # what the control document asks for (may not be serving yet)
        self._etag: str | None = None
        self._failed: dict[int, tuple[float, str]] = {}
        self._lock = threading.Lock()           # one refresh at a time
        self._stop = threading.Event()
        self.last_poll: float | None = None
        self.last_error: str | None = None
        self.reloads = 0
        self.loader = Loader(registry, settings.cache_dir, settings.interpreters)

    # -- reading -----------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def status(self) -> dict:
        snap = self._snapshot
        return {"model": self.model, "route": snap.route.to_json(), "desired_route": self._desired.to_json(),
                "ready": {v: {"sha256": l.sha256, "backbone_sha256": l.backbone_sha256, "input_size": l.input_size,
                              "loaded_at": l.loaded_at} for v, l in sorted(snap.versions.items())},
                "backbones": self.loader.backbones,
                "failed": {v: why for v, (_, why) in sorted(self._failed.items())},
                "control_etag": self._etag, "last_poll": self.last_poll, "last_error": self.last_error,
                "reloads": self.reloads}

    # -- reloading ---------------------------------------------------------------------------------
    def start(self) -> "ModelRuntime":
        """Load what the control document names now (so the first request does not wait), then poll."""
        self.refresh()
        threading.Thread(target=self._poll_forever, name="model-runtime-poll", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _poll_forever(self) -> None:
        while not self._stop.wait(self.settings.poll_s):
            self.refresh()

    def refresh(self) -> bool:
        """One poll; True when the set of ready versions or the route changed. Never raises."""
        with self._lock:
            try:
                changed = self._refresh()
                self.last_error = None             # this poll worked (a 304 included): the error is history
                return changed
            except Exception as err:   # a broken store or document must never take serving down
                self.last_error = f"{type(err).__name__}: {err}"
                log.warning("control poll failed, keeping %s: %s", sorted(self._snapshot.ready), self.last_error)
                return False
            finally:
                self.last_poll = time.time()

    def _refresh(self) -> bool:
        if self._etag is None:
            doc, etag = self.registry.control()
        else:
            blob = self.registry.store.get(CONTROL_KEY, if_none_match=self._etag)   # None: 304, unchanged
            doc, etag = (None, self._etag) if blob is None else (ControlDoc.from_json(blob.body), blob.etag)
        now = time.time()
        route = doc.models.get(self.model, ModelRoute()) if doc is not None else self._desired
        retry_due = any(now - t >= self.settings.retry_s for t, _ in self._failed.values())
        if doc is None and not retry_due:
            return False                                  # 304 and nothing to retry
        versions = dict(self._snapshot.versions)
        wanted = set(route.deployed)
        for v in sorted(wanted - set(versions), reverse=True):      # newest first
            failed_at = self._failed.get(v, (0.0, ""))[0]
            if failed_at and now - failed_at < self.settings.retry_s:
                continue
            try:
                versions[v] = self.loader.load(self.model, v)
                self._failed.pop(v, None)
            except Exception as err:
                why = err.message if isinstance(err, AfterDarkError) else f"{type(err).__name__}: {err}"
                self._failed[v] = (now, why)
                log.warning("not serving %s v%s: %s", self.model, v, why)
        # The new route serves only once every version it sends traffic to is ready; until then the
        # previous route (and its versions) keeps serving, and the failed loads are retried.
        if all(v in versions for v, w in route.weights.items() if w > 0) or not self._snapshot.versions:
            serving = route
        else:
            serving = self._snapshot.route
            log.warning("%s: keeping route %s until %s can be loaded", self.model, serving.to_json(), route.to_json())
        for v in to_unload(wanted | set(serving.deployed), set(versions)):
            del versions[v]
        for v in list(self._failed):
            if v not in wanted:
                del self._failed[v]
        self._desired, route = route, serving
        changed = versions.keys() != self._snapshot.versions.keys() or route != self._snapshot.route
        self._snapshot = Snapshot(route=route, versions=versions)   # the swap: one reference
        self.loader.keep({l.backbone_sha256 for l in versions.values() if l.backbone_sha256})
        self._etag = etag
        self.last_error = None
        if changed:
            self.reloads += 1
            log.info("%s serving %s, route %s", self.model, sorted(versions), route.to_json())
        return changed
