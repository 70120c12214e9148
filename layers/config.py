"""Typed settings, read once from the environment (and OpenFaaS secret files) at the edge.

Example:
    settings = Settings.from_env()
    store = BlobStore(settings.s3)

Secrets come from /var/openfaas/secrets/<name> when that file exists (OpenFaaS), else from an environment
variable (local runs). No other module reads os.environ.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping

SECRETS_DIR = Path("/var/openfaas/secrets")

DEFAULT_S3_ENDPOINT = "http://127.0.0.1:9000"
DEFAULT_S3_ACCESS_KEY = "afterdark"
DEFAULT_S3_SECRET_KEY = "afterdark-dev-secret"
DEFAULT_S3_BUCKET = "afterdark"
DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_MODEL = "engineer"
DEFAULT_LABELS = ("engineer", "non_engineer")
DEFAULT_CACHE_DIR = "/tmp/afterdark-models"


def hosts(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated host list from the environment, else the default."""
    value = env.get(name)
    return tuple(h.strip() for h in value.split(",") if h.strip()) if value else default


def read_secret(name: str, env_var: str, env: Mapping[str, str], default: str | None = None,
                secrets_dir: Path = SECRETS_DIR) -> str | None:
    """An OpenFaaS secret file wins; then the environment variable; then the default."""
    path = secrets_dir / name
    if path.is_file():
        return path.read_text().strip()
    return env.get(env_var, default)


@dataclass(frozen=True)
class S3Settings:
    endpoint: str = DEFAULT_S3_ENDPOINT
    access_key: str = DEFAULT_S3_ACCESS_KEY
    secret_key: str = DEFAULT_S3_SECRET_KEY
    bucket: str = DEFAULT_S3_BUCKET
    region: str = "us-east-1"
    decoy_retention_days: int = 7       # DECOY_RETENTION_DAYS: /predict's images (decoys/) expire after this
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 10.0


@dataclass(frozen=True)
class Topics:
    """The system's topics. A prefix (KAFKA_TOPIC_PREFIX) lets a test run share a broker without touching
    the real topics: `make test` uses "test-"."""
    fixes: str = "fixes"
    predict_decoy: str = "predict-decoy"
    predictions: str = "predictions"
    model_events: str = "model-events"
    dead_letter: str = "dead-letter"
    commands: str = "commands"

    @classmethod
    def with_prefix(cls, prefix: str) -> "Topics":
        return cls(**{f.name: prefix + f.default for f in fields(cls)})

    def all(self) -> tuple[str, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str = DEFAULT_KAFKA_BOOTSTRAP
    # How long a client waits for the broker at construction/send before it reports Unavailable.
    bootstrap_timeout_ms: int = 5000
    request_timeout_ms: int = 5000
    topic_prefix: str = ""
    # Production: authenticate every client (docs/deploy.md, "Kafka: who may write what"). Locally: PLAINTEXT.
    security_protocol: str = "PLAINTEXT"     # KAFKA_SECURITY_PROTOCOL: PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
    sasl_mechanism: str | None = None        # KAFKA_SASL_MECHANISM: SCRAM-SHA-512 | SCRAM-SHA-256 | PLAIN
    sasl_username: str | None = None         # KAFKA_SASL_USERNAME (one Kafka user per component)
    sasl_password: str | None = None         # secret kafka-password, else KAFKA_SASL_PASSWORD
    ssl_cafile: str | None = None            # KAFKA_SSL_CAFILE: the cluster's CA, for SSL and SASL_SSL

    @property
    def topics(self) -> Topics:
        return Topics.with_prefix(self.topic_prefix)

    def client_options(self) -> dict[str, object]:
        """What every Kafka client (producer, consumer, admin) is built with, beyond its own settings."""
        options: dict[str, object] = {"bootstrap_servers": self.bootstrap, "security_protocol": self.security_protocol}
        if self.sasl_mechanism:
            options.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                           sasl_plain_password=self.sasl_password)
        if self.ssl_cafile:
            options["ssl_cafile"] = self.ssl_cafile
        return options


@dataclass(frozen=True)
class FetchSettings:
    """Limits for fetching an image URL (see layers.edge.intake)."""
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 3
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 10.0
    deadline_s: float = 15.0             # the whole download (redirects included), however slowly bytes arrive
    allow: tuple[str, ...] = ()          # "host", "host:port" or a CIDR exempt from the SSRF address check


@dataclass(frozen=True)
class ServingSettings:
    poll_s: float = 1.0                  # how often the control document is polled (a 304 costs ~1 ms)
    retry_s: float = 5.0                 # how soon a version that failed to load is tried again
    interpreters: int = 2                # LiteRT interpreters per loaded version (one per core)
    unconfident_below: float = 0.8
    predict_per_minute: int = 1200       # PREDICT_RATE_LIMIT: /predict calls a client (or Slack user) may make a
                                         # minute, per replica, in bursts of as many; 0: no limit
    cache_dir: str = DEFAULT_CACHE_DIR   # verified .tflite files, by model/version/sha256
    offpath_queue: int = 256             # decoy/shadow jobs waiting; beyond this they are dropped and counted
    offpath_max_bytes: int = 64 * 2**20  # ...and the bytes they hold (images, inputs), likewise
    offpath_workers: int = 2             # OFFPATH_WORKERS: threads doing that work (S3 writes overlap)
    decoy_inline_bytes: int = 900_000    # DECOY_INLINE_BYTES: a decoy's image up to this size rides in its Kafka
                                         # record (under the broker's 1 MiB message.max.bytes); a larger one, or
                                         # an unconfident answer's, /predict stores itself. 0: always store
    max_pixels: int = 40_000_000         # decoded pixels per request: layers.images.pixel_budget of the limits
    cache_entries: int = 4096            # predictions cached by (image sha256, model, version); 0: no cache
    rendezvous_policy: str = "best-confidence"   # best-confidence | fastest | preferred (layers.serving.rendezvous)
    rendezvous_deadline_s: float = 2.0   # well inside Slack's 3 s
    rendezvous_delays_ms: tuple[tuple[int, float], ...] = ()   # fault injection for tests: (version, ms) pairs
    ensemble_weighting: str = "equal"    # ENSEMBLE_WEIGHTING: how the dating app's two models are averaged
                                         # (layers.serving.ensemble)


@dataclass(frozen=True)
class SlackSettings:
    signing_secret: str | None = None    # secret slack-signing-secret, else SLACK_SIGNING_SECRET; None: Slack refused
    inline_budget_s: float = 0.8         # reply inline if done by then; Slack allows 3 s, the rest is margin
    bot_token: str | None = None         # secret slack-bot-token / SLACK_BOT_TOKEN: chat.postMessage (review channel)
    review_channel: str = ""             # SLACK_REVIEW_CHANNEL: post unconfident answers there with vote buttons
    api_url: str = "https://slack.com/api/"   # SLACK_API_URL: the Web API (locally: a receiver on loopback)
    first_answer_s: float = 2.3          # two-phase replies (rendezvous): the best answer by then, inline...
    final_answer_s: float = 10.0         # ...and the final one, over it, by then
    response_type: str = "in_channel"    # for results; help and errors are always ephemeral
    response_url_allow: tuple[str, ...] = ()   # extra response_url hosts (host or host:port), for local try-outs
    workers: int = 4
    max_inflight: int = 32
    admins: tuple[str, ...] = ()         # who may change routing from Slack: "T01:U42" or "U42" (secret slack-admins)
    file_hosts: tuple[str, ...] = ("files.slack.com",)    # SLACK_FILE_HOSTS: where url_private may point (the bot
                                                          # token goes there and nowhere else)
    avatar_hosts: tuple[str, ...] = ("avatars.slack-edge.com", "secure.gravatar.com")   # SLACK_AVATAR_HOSTS: profile photos
    receipts: bool = True                # SLACK_RECEIPTS: the trainer tells each voter when a version that learnt
                                         # from their vote is promoted
    questions_per_hour: int = 6          # SLACK_QUESTIONS_PER_HOUR: images the trainer asks the review channel
                                         # about (ties, unsure consensus, disagreeing versions); 0: none


@dataclass(frozen=True)
class DbSettings:
    """PostgreSQL (layers.db). `url` is a libpq URL or conninfo string; None means no database is configured,
    and everything that needs one answers 503."""
    url: str | None = None
    pool_max: int = 4
    wait_s: float = 3.0                 # how long a caller waits for a connection before Unavailable
    connect_timeout_s: int = 2
    statement_timeout_ms: int = 5000


@dataclass(frozen=True)
class AuthSettings:
    """Who may call the JSON API (layers.edge.auth) and how often a principal may vote (layers.ledger.limits)."""
    api_tokens: str = ""                # lines "client sha256(token) [scope,scope]"; secret api-tokens
    votes_per_window: int = 30          # per principal (a Slack user, an API client, a delegated user)...
    vote_window_s: int = 60
    client_votes_per_window: int = 300  # ...and per API client over all the users it acts for (delegate)
    refused_edits_per_window: int = 10  # /models edits refused to one principal (each is audited) per vote_window_s


@dataclass(frozen=True)
class ServerSettings:
    """The function's own server (the template's index.py behind of-watchdog)."""
    function: str = "function"           # OPENFAAS_NAME: the function's name, in logs and metrics
    handler: str = "function.handler"    # AFTERDARK_HANDLER: the handler module (dev/gateway.py: functions.<name>.handler)
    log_level: str = "INFO"              # LOG_LEVEL
    max_body_bytes: int = 16 * 2**20     # AFTERDARK_MAX_BODY_BYTES: larger bodies get a JSON 413 unread
    bind: str = "127.0.0.1"              # AFTERDARK_BIND / AFTERDARK_PORT: where of-watchdog finds it
    port: int = 5000
    threads: int = 8                     # AFTERDARK_THREADS: waitress' worker threads
    hostname: str = "localhost"          # HOSTNAME


@dataclass(frozen=True)
class MediaSettings:
    """Signed, expiring links to images in S3, served by the `media` function (layers.edge.media)."""
    signing_key: str | None = None      # secret media-signing-key, else MEDIA_SIGNING_KEY; None: no links, 503
    public_url: str = "http://127.0.0.1:8080"   # how Slack (or a browser) reaches the gateway: PUBLIC_URL
    ttl_s: int = 7 * 24 * 3600          # a link works this long (Slack caches images it has fetched)


def max_pixels_for(env: Mapping[str, str]) -> int:
    """The decoded-pixel budget of one request, from the function's memory limit (MEMORY_LIMIT_MB, as in
    stack.yml's limits) and its request threads (AFTERDARK_THREADS, the template's waitress threads)."""
    from layers.images import MAX_PIXELS, pixel_budget
    if not env.get("MEMORY_LIMIT_MB"):
        return MAX_PIXELS
    return min(MAX_PIXELS, pixel_budget(int(env["MEMORY_LIMIT_MB"]), int(env.get("AFTERDARK_THREADS", "8"))))


@dataclass(frozen=True)
class Settings:
    s3: S3Settings = field(default_factory=S3Settings)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    fetch: FetchSettings = field(default_factory=FetchSettings)
    serving: ServingSettings = field(default_factory=ServingSettings)
    slack: SlackSettings = field(default_factory=SlackSettings)
    db: DbSettings = field(default_factory=DbSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    model: str = DEFAULT_MODEL
    labels: tuple[str, ...] = DEFAULT_LABELS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        s3 = S3Settings(
            endpoint=env.get("S3_ENDPOINT", DEFAULT_S3_ENDPOINT),
            access_key=read_secret("s3-access-key", "S3_ACCESS_KEY", env, DEFAULT_S3_ACCESS_KEY) or "",
            secret_key=read_secret("s3-secret-key", "S3_SECRET_KEY", env, DEFAULT_S3_SECRET_KEY) or "",
            bucket=env.get("S3_BUCKET", DEFAULT_S3_BUCKET),
            region=env.get("S3_REGION", "us-east-1"),
            decoy_retention_days=int(env.get("DECOY_RETENTION_DAYS", S3Settings.decoy_retention_days)),
        )
        kafka = KafkaSettings(bootstrap=env.get("KAFKA_BOOTSTRAP", DEFAULT_KAFKA_BOOTSTRAP),
                              topic_prefix=env.get("KAFKA_TOPIC_PREFIX", ""),
                              security_protocol=env.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
                              sasl_mechanism=env.get("KAFKA_SASL_MECHANISM") or None,
                              sasl_username=env.get("KAFKA_SASL_USERNAME") or None,
                              sasl_password=read_secret("kafka-password", "KAFKA_SASL_PASSWORD", env, None),
                              ssl_cafile=env.get("KAFKA_SSL_CAFILE") or None)
        fetch = FetchSettings(
            max_bytes=int(env.get("FETCH_MAX_BYTES", FetchSettings.max_bytes)),
            deadline_s=float(env.get("FETCH_DEADLINE_S", FetchSettings.deadline_s)),
            allow=hosts(env, "FETCH_ALLOW", ()),
        )
        serving = ServingSettings(
            poll_s=float(env.get("CONTROL_POLL_S", ServingSettings.poll_s)),
            interpreters=int(env.get("INTERPRETERS", ServingSettings.interpreters)),
            unconfident_below=float(env.get("UNCONFIDENT_BELOW", ServingSettings.unconfident_below)),
            predict_per_minute=int(env.get("PREDICT_RATE_LIMIT", ServingSettings.predict_per_minute)),
            cache_dir=env.get("MODEL_CACHE_DIR", DEFAULT_CACHE_DIR),
            max_pixels=max_pixels_for(env),
            cache_entries=int(env.get("PREDICTION_CACHE_ENTRIES", ServingSettings.cache_entries)),
            offpath_workers=int(env.get("OFFPATH_WORKERS", ServingSettings.offpath_workers)),
            decoy_inline_bytes=int(env.get("DECOY_INLINE_BYTES", ServingSettings.decoy_inline_bytes)),
            rendezvous_policy=env.get("RENDEZVOUS_POLICY", ServingSettings.rendezvous_policy),
            rendezvous_deadline_s=float(env.get("RENDEZVOUS_DEADLINE_S", ServingSettings.rendezvous_deadline_s)),
            rendezvous_delays_ms=tuple((int(v), float(ms)) for v, ms in
                                       (pair.split("=") for pair in env.get("RENDEZVOUS_DELAYS_MS", "").split(",") if pair)),
            ensemble_weighting=env.get("ENSEMBLE_WEIGHTING", ServingSettings.ensemble_weighting),
        )
        slack = SlackSettings(
            signing_secret=read_secret("slack-signing-secret", "SLACK_SIGNING_SECRET", env) or None,
            inline_budget_s=float(env.get("SLACK_INLINE_BUDGET_S", SlackSettings.inline_budget_s)),
            first_answer_s=float(env.get("SLACK_FIRST_ANSWER_S", SlackSettings.first_answer_s)),
            bot_token=read_secret("slack-bot-token", "SLACK_BOT_TOKEN", env) or None,
            review_channel=env.get("SLACK_REVIEW_CHANNEL", ""),
            api_url=env.get("SLACK_API_URL", SlackSettings.api_url),
            final_answer_s=float(env.get("SLACK_FINAL_ANSWER_S", SlackSettings.final_answer_s)),
            response_type=env.get("SLACK_RESPONSE_TYPE", SlackSettings.response_type),
            response_url_allow=hosts(env, "SLACK_RESPONSE_URL_ALLOW", ()),
            admins=tuple(f"slack:{a}" if ":" in a else a
                         for a in (read_secret("slack-admins", "SLACK_ADMINS", env, "") or "").replace(",", " ").split()),
            file_hosts=hosts(env, "SLACK_FILE_HOSTS", SlackSettings.file_hosts),
            avatar_hosts=hosts(env, "SLACK_AVATAR_HOSTS", SlackSettings.avatar_hosts),
            receipts=env.get("SLACK_RECEIPTS", "on").lower() not in ("0", "off", "false", "no"),
            questions_per_hour=int(env.get("SLACK_QUESTIONS_PER_HOUR", SlackSettings.questions_per_hour)),
        )
        db = DbSettings(url=read_secret("database-url", "DATABASE_URL", env) or None)
        auth = AuthSettings(
            api_tokens=read_secret("api-tokens", "API_TOKENS", env, "") or "",
            votes_per_window=int(env.get("VOTE_RATE_LIMIT", AuthSettings.votes_per_window)),
            vote_window_s=int(env.get("VOTE_RATE_WINDOW_S", AuthSettings.vote_window_s)),
            client_votes_per_window=int(env.get("CLIENT_VOTE_RATE_LIMIT", AuthSettings.client_votes_per_window)),
            refused_edits_per_window=int(env.get("REFUSED_EDIT_RATE_LIMIT", AuthSettings.refused_edits_per_window)),
        )
        media = MediaSettings(
            signing_key=read_secret("media-signing-key", "MEDIA_SIGNING_KEY", env) or None,
            public_url=env.get("PUBLIC_URL", env.get("OPENFAAS_URL", MediaSettings.public_url)).rstrip("/"),
            ttl_s=int(env.get("MEDIA_TTL_S", MediaSettings.ttl_s)),
        )
        server = ServerSettings(
            function=env.get("OPENFAAS_NAME", ServerSettings.function),
            handler=env.get("AFTERDARK_HANDLER", ServerSettings.handler),
            log_level=env.get("LOG_LEVEL", ServerSettings.log_level),
            max_body_bytes=int(env.get("AFTERDARK_MAX_BODY_BYTES", ServerSettings.max_body_bytes)),
            bind=env.get("AFTERDARK_BIND", ServerSettings.bind),
            port=int(env.get("AFTERDARK_PORT", ServerSettings.port)),
            threads=int(env.get("AFTERDARK_THREADS", ServerSettings.threads)),
            hostname=env.get("HOSTNAME", ServerSettings.hostname),
        )
        return cls(s3=s3, kafka=kafka, fetch=fetch, serving=serving, slack=slack, db=db, auth=auth, media=media,
                   server=server, model=env.get("MODEL_NAME", DEFAULT_MODEL))
