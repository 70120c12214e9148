"""The SQL schema of Slack After Dark, as numbered migrations (docs/formats.md, "PostgreSQL", describes it).

Example:
    Database(settings.db).migrate()      # applies whatever is missing, in order, under an advisory lock

IMPORTANT: migrations are append-only. Never edit one that has shipped: add the next number. Each runs in
the same transaction as its row in `schema_migrations`, so a crash leaves it applied or not, never half.
"""
from __future__ import annotations

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "vote ledger, training runs, replay guard, rate limits", """
CREATE TABLE votes (
    vote_id          text PRIMARY KEY,                         -- the request's idempotency key, never the content
    seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE, -- ledger order (per image: the Kafka order)
    model            text NOT NULL,
    image_sha256     char(64) NOT NULL,
    image_key        text NOT NULL,
    label            text NOT NULL,
    principal        text NOT NULL,                            -- slack:<team>:<user> | api:<client>[:<user>]
    source           text NOT NULL CHECK (source IN ('slack', 'api', 'button')),
    created_at       timestamptz NOT NULL,                     -- when the function accepted the vote
    ingested_at      timestamptz NOT NULL DEFAULT now(),
    kafka_topic      text NOT NULL,
    kafka_partition  integer NOT NULL,
    kafka_offset     bigint NOT NULL
);
CREATE INDEX votes_by_model_seq ON votes (model, seq);
CREATE INDEX votes_by_image ON votes (model, image_sha256, principal, seq);

CREATE TABLE training_runs (
    run_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model        text NOT NULL,
    trigger      text NOT NULL,                 -- votes | timer | retry | command
    watermark    bigint NOT NULL,               -- the ledger seq this run trained through
    votes        integer NOT NULL,              -- votes behind the consensus it trained on
    parent       integer,                       -- the live version it was compared with
    stage        text NOT NULL DEFAULT 'started' CHECK (stage IN ('started', 'published', 'registered', 'announced')),
    outcome      text CHECK (outcome IN ('published', 'unchanged', 'refused', 'failed')),  -- NULL while running
    reason       text,
    version      integer,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    details      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX training_runs_by_model ON training_runs (model, run_id);

CREATE TABLE replay_guard (
    key      text PRIMARY KEY,                  -- "<timestamp>:<signature>" of a signed Slack request
    seen_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX replay_guard_by_age ON replay_guard (seen_at);

CREATE TABLE rate_limits (
    principal     text NOT NULL,
    action        text NOT NULL,
    window_start  timestamptz NOT NULL,
    hits          integer NOT NULL,
    PRIMARY KEY (principal, action, window_start)
);
"""),
    (2, "dating app: profiles and the matches shown", """
CREATE TABLE profiles (
    principal     text PRIMARY KEY,                 -- slack:<team>:<user> | api:<client>[:<user>]
    display_name  text NOT NULL,
    photo_sha256  char(64) NOT NULL,                -- of the stored JPEG (re-encoded: no EXIF, at most 512 px)
    photo_key     text NOT NULL,                    -- profiles/<sha256>.jpg
    label         text NOT NULL,                    -- the side: the confirmed one, else the ensemble's
    score         double precision NOT NULL,        -- the ensemble's probability of the first class (engineer)
    confirmed     boolean NOT NULL DEFAULT false,   -- the user confirmed their side (a button, also a vote)
    scores        jsonb NOT NULL,                   -- layers.serving.ensemble.EnsembleScore.to_json()
    versions      integer[] NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX profiles_by_label ON profiles (label, score);

CREATE TABLE matches_shown (
    viewer    text NOT NULL REFERENCES profiles (principal) ON DELETE CASCADE,
    shown     text NOT NULL REFERENCES profiles (principal) ON DELETE CASCADE,
    score     double precision NOT NULL,
    shown_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (viewer, shown)
);
CREATE INDEX matches_shown_by_shown ON matches_shown (shown);
"""),
    (3, "voter reliability, as the trainer's last consensus estimated it", """
CREATE TABLE voters (
    model        text NOT NULL,
    principal    text NOT NULL,
    accuracy     double precision NOT NULL,     -- Dawid-Skene (one-coin) estimate of P(vote is right)
    weight       double precision NOT NULL,     -- log-odds one vote adds; 0 at or below chance
    votes        integer NOT NULL,              -- latest votes, one per image
    checked      double precision NOT NULL,     -- the evidence the estimate rests on (other voters', gold's)
    gold         integer NOT NULL,              -- votes on known-answer images
    gold_right   integer NOT NULL,
    watermark    bigint NOT NULL,               -- the ledger seq the estimate was made at
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, principal)
);
"""),
    (4, "idempotency keys, bound when a vote is acknowledged", """
CREATE TABLE vote_keys (
    vote_id      text PRIMARY KEY,              -- sha256(principal, Idempotency-Key)[:32]: the vote's id
    fingerprint  text NOT NULL,                 -- what the key was first used for (layers.ledger.votes.request_fingerprint)
    sent         boolean NOT NULL DEFAULT false,   -- Kafka acknowledged the vote's event
    created_at   timestamptz NOT NULL DEFAULT now()
);
"""),
    (5, "the DataOps audit log", """
CREATE TABLE audit_log (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model     text NOT NULL,                 -- whose route changed ('' for the document alone)
    actor     text NOT NULL,
    change    text NOT NULL,
    revision  integer NOT NULL,              -- the control document's revision it made, or saw when refused
    refused   text,                          -- why it was refused; NULL: applied
    before    jsonb,                         -- the model's route before an applied change
    after     jsonb,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_by_model ON audit_log (model, id DESC);
CREATE INDEX audit_log_applied_by_model ON audit_log (model, id DESC) WHERE refused IS NULL;
"""),
    (6, "the dating app: an opaque id per profile, shown to others instead of the principal", """
ALTER TABLE profiles ADD COLUMN public_id uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX profiles_by_public_id ON profiles (public_id);
CREATE INDEX profiles_by_photo ON profiles (photo_key);
"""),
    (7, "rate limits over a sliding window: the times of the accepted requests, not fixed windows' counts", """
CREATE TABLE rate_log (
    principal  text NOT NULL,
    action     text NOT NULL,                -- vote | signup | refused-edit
    hits       timestamptz[] NOT NULL,       -- when the requests accepted in the last window came (at most the limit)
    PRIMARY KEY (principal, action)
);
-- rate_limits stays until a later migration: replicas of the previous release still count in it during a
-- rolling deploy
"""),
    (8, "Slack: a voter's own votes, the canary's evidence so far, vote receipts, questions to the crowd", """
CREATE INDEX votes_by_principal ON votes (model, principal, seq);
CREATE TABLE canary_state (
    model       text PRIMARY KEY,
    canary      integer,                        -- the version being judged (NULL: none now)
    live        integer,
    evidence    jsonb NOT NULL DEFAULT '{}',    -- n, the discordant pairs, LR, p: the paired test so far
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE receipts (
    model       text NOT NULL,
    version     integer NOT NULL,               -- the promoted version that learnt from the vote(s)
    principal   text NOT NULL,                  -- slack:<team>:<user>: told once per promotion
    images      integer NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, version, principal)
);
CREATE TABLE crowd_questions (
    model         text NOT NULL,
    image_sha256  char(64) NOT NULL,
    reason        text NOT NULL,                -- tie | low posterior | disagreement | canary decision
    asked_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, image_sha256, asked_at)
);
CREATE INDEX crowd_questions_by_time ON crowd_questions (model, asked_at);
"""),
)

__all__ = ["MIGRATIONS"]
