"""Wiring: every shared piece a function uses, built from Settings once per process. Handlers ask for what
they need; nothing else builds the stores, the pool, the sinks or the fronts, and only layers.config reads
the environment. It imports the rest of the layer lazily, so a function loads only what it asks for (media
and healthz never load LiteRT).

Example (a handler's set-up):
    W = Wiring.for_function("fix")             # Settings.from_env(), once
    RECORDER = W.recorder()                    # the S3 store, a Kafka sink, the ledger, the vote limits
    SLACK = W.slack("/fix", "/fix IMAGE_URL CLASS", nargs=(2, 2))   # signature + replay guard (PostgreSQL)
"""
from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from layers.config import Settings

if TYPE_CHECKING:
    from layers.db import Database
    from layers.edge.auth import ApiTokens
    from layers.edge.budget import RequestBudget
    from layers.edge.media import MediaLinks
    from layers.events import EventSink
    from layers.ledger.limits import RateLimiter
    from layers.ledger.recorder import VoteRecorder
    from layers.matching.app import AfterDark
    from layers.registry import Registry
    from layers.serving.runtime import ModelRuntime
    from layers.serving.predictor import Predictor
    from layers.serving.rendezvous import Rendezvous
    from layers.slack import SlackFront
    from layers.slack.home import AppHome
    from layers.slack.review import ReviewChannel
    from layers.store import BlobStore


class Wiring:
    def __init__(self, settings: Settings, name: str) -> None:
        self.settings, self.name = settings, name

    @classmethod
    def for_function(cls, name: str) -> "Wiring":
        return cls(Settings.from_env(), name)

    @cached_property
    def store(self) -> "BlobStore":
        from layers.store import BlobStore
        return BlobStore(self.settings.s3)

    @cached_property
    def db(self) -> "Database":
        from layers.db import Database
        return Database(self.settings.db)

    @cached_property
    def sink(self) -> "EventSink":
        from layers.events import EventSink
        return EventSink(self.settings.kafka, client_id=self.name)

    @cached_property
    def tokens(self) -> "ApiTokens":
        from layers.edge.auth import ApiTokens
        return ApiTokens.parse(self.settings.auth.api_tokens)

    @cached_property
    def budget(self) -> "RequestBudget":
        """Predictions a client may ask for a minute, in this replica."""
        from layers.edge.budget import RequestBudget
        return RequestBudget(self.settings.serving.predict_per_minute)

    @cached_property
    def links(self) -> "MediaLinks":
        from layers.edge.media import MediaLinks
        return MediaLinks(self.settings.media)

    @cached_property
    def registry(self) -> "Registry":
        """The registry; its changes are audited in PostgreSQL."""
        from layers.registry import AuditLog, Registry
        return Registry(self.store, AuditLog(self.db))

    @cached_property
    def vote_limiter(self) -> "RateLimiter":
        """Votes (and dating-app sign-ups) per principal, across replicas."""
        return self.limiter(self.settings.auth.votes_per_window)

    def limiter(self, per_window: int) -> "RateLimiter":
        from layers.ledger.limits import RateLimiter
        return RateLimiter(self.db, per_window, self.settings.auth.vote_window_s)

    def recorder(self, per_client: bool = True) -> "VoteRecorder":
        """The vote recorder; with `per_client`, an API client's votes are also limited as one voter's."""
        from layers.ledger import Ledger
        from layers.ledger.recorder import VoteRecorder
        clients = self.limiter(self.settings.auth.client_votes_per_window) if per_client else None
        return VoteRecorder(self.store, self.sink, Ledger(self.db), self.vote_limiter, self.settings,
                            client_limiter=clients)

    @cached_property
    def runtime(self) -> "ModelRuntime":
        """The model runtime, started once (it polls the control document and hot-reloads verified versions),
        and watched by the metrics."""
        from layers import metrics
        from layers.registry import Registry
        from layers.serving.runtime import ModelRuntime
        runtime = ModelRuntime(Registry(self.store), self.settings.model, self.settings.serving).start()
        metrics.watch_runtime(runtime)
        return runtime

    @cached_property
    def review(self) -> "ReviewChannel":
        """The review channel that unconfident answers are posted to (off unless configured)."""
        from layers.slack.review import ReviewChannel
        return ReviewChannel(self.settings.slack, self.links, self.settings.labels)

    def predictor(self) -> "Predictor":
        """/predict's service on a started runtime: decoys and shadows off the hot path, unconfident answers to
        the review channel, all of it watched by the metrics."""
        from layers import metrics
        from layers.serving.predictor import Predictor
        review = self.review
        predictor = Predictor(self.runtime, self.store, self.sink, self.settings,
                              on_unconfident=review.submit if review.enabled else None)
        metrics.watch_offpath(self.name, predictor.offpath, *([review.queue] if review.queue else []))
        metrics.watch_cache(predictor.cache)
        return predictor

    def rendezvous(self) -> "Rendezvous":
        """Every version of the rendezvous set scoring an image, on a started runtime; its records go to
        `predictions` off the hot path, watched by the metrics."""
        from layers import metrics
        from layers.serving.rendezvous import Rendezvous
        rendezvous = Rendezvous(self.runtime, self.settings.serving, self.sink, self.settings.kafka.topics.predictions)
        metrics.watch_offpath(self.name, rendezvous.offpath)
        return rendezvous

    def dating_app(self) -> "AfterDark":
        """The dating app on a started runtime: two live models' ensemble, profiles in PostgreSQL, photos in S3
        (swept when no profile references them), the vote recorder for confirmed sides."""
        from layers.matching.app import AfterDark
        from layers.matching.profiles import Profiles
        from layers.matching.sweeper import PhotoSweeper
        from layers.serving.ensemble import Ensemble
        profiles = Profiles(self.db)
        serving = self.settings.serving
        app = AfterDark(Ensemble(self.runtime, serving, serving.ensemble_weighting), profiles, self.store,
                        self.recorder(per_client=False), self.links, self.settings.labels, serving.max_pixels,
                        self.vote_limiter)
        PhotoSweeper(self.store, profiles).start()      # photos no profile references, after an hour
        return app

    def app_home(self) -> "AppHome":
        """The AI Monkey app's Home tab: the live version, the canary's evidence, a voter's votes, the voters."""
        from layers.ledger import Ledger, VoterBoard
        from layers.ledger.standing import Standing
        from layers.registry.canary_state import CanaryBoard
        from layers.slack.home import AppHome
        return AppHome(self.registry, Standing(Ledger(self.db), self.registry), VoterBoard(self.db),
                       CanaryBoard(self.db), self.settings.model)

    def slack(self, command: str, usage: str, nargs: tuple[int, int], **kw) -> "SlackFront":
        """The Slack front of one command: signature, replay guard (PostgreSQL), acknowledge, deliver."""
        from layers.slack import SlackFront
        from layers.slack.replay_guard import ReplayGuard
        return SlackFront.from_settings(self.settings, command, usage, nargs, replay_guard=ReplayGuard(self.db), **kw)
