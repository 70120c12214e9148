"""`python -m training_job consume`: the long-running learner. Two loops in one, decoupled by the ledger:

    ingest:  poll `fixes` (group `trainer`) -> valid votes into the ledger, one transaction, idempotent on the
             vote id -> malformed records to `dead-letter` -> ONLY THEN commit the Kafka offsets. The same
             consumer reads `commands`: `train` (from /models train) starts a run at once.
    train:   once the backlog is read (each partition to the end it had), when the ledger has changed since
             the last trained watermark (`min_votes` new votes, or
             `max_wait_s` after the oldest of them) -> a training run (a row in `training_runs`) on the
             complete consensus, compared with the LIVE version (the most traffic) -> publish -> register
             as the canary candidate -> model-events.

A run trains on its own thread (one at a time), so ingestion and the canary analysis go on during it: a canary
is judged every `canary_every_s` even while its successor trains. The loop's state (the trained watermark, the
backoff) changes on the loop's thread only, when the run's outcome is settled; the reconciler waits until no
run is in flight (it would take the run's row for one a crash interrupted).

Nothing is lost between them: a vote is in the ledger before its offset is committed, so a crash replays it
(and the insert skips it); a refused or failed run leaves the watermark where it was, so the next trigger
(after a doubling backoff) trains on the same votes and more; the reconciler (training_job.reconcile)
finishes a run that died between publishing, registering and announcing. A malformed vote (bad JSON,
unknown label, image not stored) goes to the dead-letter topic with the reason.
"""
from __future__ import annotations

import signal
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from layers.config import Settings
from layers.db import Database
from layers import metrics
from layers.errors import AfterDarkError, BadInput, Unavailable
from layers.events import (CommandRecord, EventSink, Malformed, announce, dead_letter, decode, make_consumer,
                           process_then_commit)
from layers.ledger import Consensus, GoldAnswers, Ledger, LedgerSnapshot, Position, Recorded, TrainingRuns, Vote, VoterBoard
from layers.registry import AuditLog, ModelMetadata, Registry, image_key
from layers.registry.keys import DECOY_PREFIX
from layers.store import BlobStore
from training_job.config import TrainConfig
from training_job.examples import agree, examples
from training_job.failpoints import failpoint
from training_job.reconcile import reconcile
from training_job.lease import Lease
from training_job.tracking import Tracker

INGEST_RETRY_S = 2.0
SWEEP_EVERY_S = 3600.0            # the decoy sweep (a listing of decoys/), once an hour
LEASE_CHECK_S = 5.0               # how often the active trainer checks it still holds the lease


@dataclass(frozen=True)
class RunPlan:
    """A training run as the loop decided it: its row, the ledger state and consensus it learns, and the
    version it starts from."""
    run_id: int
    snapshot: LedgerSnapshot
    consensus: Consensus
    parent: ModelMetadata


class Learner:
    def __init__(self, settings: Settings, cfg: TrainConfig) -> None:
        self.settings, self.cfg = settings, cfg
        self.store = BlobStore(settings.s3)
        self.sink = EventSink(settings.kafka, client_id="training-job")
        self.labels = list(settings.labels)       # the classes votes may name (as /fix validates them)
        self._trainer = None
        self._analyst = None
        self._news = None                 # what the trainer tells Slack (training_job.slack_news)
        self.tracker = Tracker.from_env(self.store)        # MLflow, when MLFLOW_TRACKING_URI names one
        self.db = Database(settings.db)
        self.registry = Registry(self.store, AuditLog(self.db))       # its changes are audited in PostgreSQL
        self.ledger = Ledger(self.db)
        self.runs = TrainingRuns(self.db)
        self.voters = VoterBoard(self.db)
        self.gold = GoldAnswers(self.store)
        self._consensus: tuple[tuple, Consensus] | None = None     # (ledger state, its consensus)
        self._decoy_rule: bool | None = None      # whether the store expires decoys/ by itself (sweep_decoys)
        self.topic = cfg.topic or settings.kafka.topics.fixes
        self.commands = cfg.commands_topic or settings.kafka.topics.commands      # "none": no commands
        self.requested: str | None = None        # who asked for a run now (a `train` command), if anyone
        self.trained: int | None = None          # the last trained watermark (read from training_runs once)
        self.failures = 0
        self.next_attempt = 0.0
        self._stop = False

    def stop(self, *_):
        self._stop = True

    @property
    def trainer(self):
        """The Keras side, imported and built on the first training run (ingesting needs no TensorFlow)."""
        if self._trainer is None:
            from training_job.pipeline import Trainer
            self._trainer = Trainer(self.store, self.sink, self.cfg, self.tracker, audit=self.registry.audit_log)
        return self._trainer

    def emit(self, event: str, version: int | None, reason: str | None = None, **details) -> None:
        announce(self.sink, self.cfg.model, event, version, reason, **details)

    # -- ingest ------------------------------------------------------------------------------------------
    def validate(self, raw: bytes | None) -> Vote | str:
        """The vote, or the reason it is malformed."""
        rec = decode(raw, Vote)
        if isinstance(rec, Malformed):
            return rec.reason
        try:
            rec.validate(self.labels)
        except BadInput as err:
            return err.message
        if rec.image_key != image_key(rec.image_sha256) or not self.store.exists(rec.image_key):
            return f"image {rec.image_key} is not stored (votes must reference images/<sha256>)"
        return rec

    def ingest(self, records: list) -> int:
        """Votes into the ledger, then dead letters. Raises (AfterDarkError) when either cannot be written."""
        votes, dead = [], []
        for r in records:
            if r.topic == self.commands:
                self.command(r)
                continue
            try:
                v = self.validate(r.value)
            except Unavailable:
                raise                                     # S3 is down: the batch is retried, nothing is lost
            except Exception as err:                      # a bug on one record must never stop the partition
                v = f"could not be validated: {type(err).__name__}: {err}"
            if isinstance(v, str):
                dead.append((r, v))
            else:
                votes.append(Recorded(v, Position(r.topic, r.partition, r.offset)))
        inserted = self._record(votes, records, dead)
        for r, reason in dead:
            dead_letter(self.sink, r, reason, "consume")
        failpoint("after-ledger-insert")
        if votes:
            metrics.INGESTED_VOTES.labels(self.cfg.model).inc(inserted)
            print(f"[consume] ledger: {inserted} new votes ({len(votes) - inserted} already there)", flush=True)
        return inserted

    def _record(self, votes: list[Recorded], records: list, dead: list) -> int:
        """Insert the votes; when the database refuses the batch for its content (not because it is down),
        insert them one by one and send the ones it refuses to the dead letters, so one bad row never blocks
        the partition."""
        try:
            return self.ledger.record(votes)
        except AfterDarkError:
            raise
        except Exception as err:
            print(f"[consume] the ledger refused a batch ({type(err).__name__}); inserting one by one", flush=True)
        by_offset = {Position(r.topic, r.partition, r.offset): r for r in records}
        inserted = 0
        for v in votes:
            try:
                inserted += self.ledger.record([v])
            except AfterDarkError:
                raise
            except Exception as err:
                dead.append((by_offset[v.position],
                             f"the ledger refused it: {type(err).__name__}: {str(err).strip()[:200]}"))
        return inserted

    def command(self, record) -> None:
        cmd = decode(record.value, CommandRecord)
        if isinstance(cmd, CommandRecord) and cmd.command == "train" and cmd.model == self.cfg.model:
            print(f"[consume] {cmd.actor} asked for a training run", flush=True)
            self.requested = cmd.actor

    # -- consensus ---------------------------------------------------------------------------------------
    def consensus(self, snap=None) -> Consensus:
        """The ledger's consensus now (layers.ledger.consensus, with the dataset as gold); the voters'
        estimated reliability is written to the `voters` table on the way. Computed again only when the
        ledger moved (the canary analysis asks every few seconds)."""
        snap = snap or self.ledger.snapshot(self.cfg.model)
        gold = self.gold.answers(self.cfg.dataset)
        key = (snap.watermark, snap.votes, id(gold))
        if self._consensus is None or self._consensus[0] != key:
            agreed = agree(snap, gold, self.cfg)
            self.voters.save(self.cfg.model, agreed.voters.values(), snap.watermark)
            self._consensus = (key, agreed)
        return self._consensus[1]

    # -- train -------------------------------------------------------------------------------------------
    def due(self) -> str | None:
        """Why a training run should start now, or None."""
        if self.requested:
            return "command"
        if time.time() < self.next_attempt:
            return None
        model = self.cfg.model
        if self.trained is None:
            self.trained = self.runs.trained_watermark(model)
        pending, age = self.ledger.pending(model, self.trained)
        if not pending:
            return None
        if self.failures:
            return "retry"
        if pending >= self.cfg.min_votes:
            return "votes"
        if age is not None and age >= self.cfg.max_wait_s:
            return "timer"
        return None

    def plan(self, trigger: str) -> RunPlan | None:
        """What a training run will learn (the ledger's snapshot and consensus) and from which parent, with its
        row in `training_runs`; None when the model has no version to retrain yet. On the loop's thread."""
        model, self.requested = self.cfg.model, None
        versions = self.registry.versions(model)
        if not versions:
            print(f"[consume] {model} has no version to retrain yet (run `python -m training_job bootstrap`); "
                  f"the votes wait in the ledger", flush=True)
            self.next_attempt = time.time() + self.cfg.retry_backoff_s
            return None
        snap = self.ledger.snapshot(model)
        agreed = self.consensus(snap)
        parent = self.registry.metadata(model, self.registry.live_version(model) or versions[-1])
        run_id = self.runs.start(model, trigger, snap.watermark, snap.votes, parent.version)
        print(f"[consume] run {run_id} ({trigger}): training on the ledger through {snap.watermark} "
              f"({snap.votes} votes, {len(agreed.accepted)} images agreed, {len(agreed.quarantined)} quarantined) "
              f"against live v{parent.version}", flush=True)
        return RunPlan(run_id, snap, agreed, parent)

    def execute(self, plan: RunPlan):
        """The run itself: fine-tune, fit, convert, gate, publish, register. On the training thread: it touches
        nothing of the loop's state, only the store, the registry (conditional writes) and its own row."""
        failpoint("run-started")
        items, _ = self.trainer.dataset()
        backbone, info = self.trainer.backbones.for_version(plan.parent)
        snap, run_id = plan.snapshot, plan.run_id
        return self.trainer.train_and_publish(
            examples(items, plan.consensus, self.cfg.evaluation_fraction), plan.consensus,
            {"watermark": snap.watermark, "votes": snap.votes, "run_id": run_id},
            backbone, info, parent=plan.parent, seed=plan.parent.params.get("seed", self.cfg.seed),
            note=f"run {run_id}: ledger through {snap.watermark}",
            progress=lambda stage, version: self.runs.advance(run_id, stage, version))

    def settle(self, plan: RunPlan, run: Future):
        """The finished run's outcome into the loop's state (the trained watermark, the backoff). On the loop's
        thread."""
        model, run_id = self.cfg.model, plan.run_id
        try:
            outcome = run.result()
        except Exception as err:
            reason = err.message if isinstance(err, AfterDarkError) else f"{type(err).__name__}: {err}"
            row = self.runs.get(run_id)
            if row is not None and row.stage != "started":    # the version exists: the reconciler finishes it
                print(f"[consume] run {run_id} stopped after '{row.stage}' ({reason}); the reconciler finishes it",
                      flush=True)
                self.next_attempt = time.time() + self.cfg.retry_backoff_s
                return None
            self._failed(run_id, "failed", reason)
            metrics.TRAINING_RUNS.labels(model, "failed").inc()
            return None
        metrics.TRAINING_RUNS.labels(model, outcome.status).inc()
        if outcome.status == "refused":
            self._failed(run_id, "refused", outcome.reason)
        else:
            self.runs.finish(run_id, outcome.status, outcome.reason or None, version=outcome.version)
            self.trained, self.failures, self.next_attempt = plan.snapshot.watermark, 0, 0.0
        print(f"[consume] run {run_id}: {outcome.status} v{outcome.version} {outcome.reason}".rstrip(), flush=True)
        return outcome

    def _failed(self, run_id: int, outcome: str, reason: str) -> None:
        self.runs.finish(run_id, outcome, reason)
        self.failures += 1
        delay = min(self.cfg.retry_backoff_s * 2 ** (self.failures - 1), self.cfg.retry_backoff_max_s)
        self.next_attempt = time.time() + delay
        print(f"[consume] run {run_id} {outcome}: {reason}; the votes stay in the ledger, retry in {delay:.0f} s",
              flush=True)
        if outcome == "failed":            # a refusal was announced by the gates already
            try:
                self.emit("failed", None, reason, run_id=run_id)
            except Unavailable:
                pass

    def analyse(self):
        """One step of the canary analysis (training_job.canary), when the model's policy is on."""
        if self._analyst is None:
            from training_job.canary import CanaryAnalyst
            self._analyst = CanaryAnalyst(self.settings, self.registry, self.emit, topic=self.cfg.decoy_topic or None,
                                          window_s=self.cfg.canary_window_s)
            from training_job.slack_news import SlackNews
            self._news = SlackNews(self.settings, self.registry, self.ledger, self.db, self._analyst.replayer)
        model = self.cfg.model
        try:
            step = self._analyst.step(model, self.consensus)
            if step is not None:
                self._news.canary_step(model, step)      # the App Home's evidence; a decision to the review channel
            self._news.receipts(model)                   # a newly live version tells the voters it learnt from
            disagree = (self._analyst.disagreements(model, step.live, step.version)
                        if step is not None and step.action == "waiting" else [])
            self._news.questions(model, self.consensus, disagree)       # the crowd, within its budget
            return step
        except Exception as err:     # an analysis that cannot run now never stops the votes from flowing
            why = err.message if isinstance(err, AfterDarkError) else f"{type(err).__name__}: {err}"
            print(f"[canary] analysis skipped: {why}", flush=True)
            return None

    def reconcile(self) -> None:
        for action in reconcile(self.registry, self.runs, self.cfg.model, self.emit):
            print(f"[reconcile] {action}", flush=True)
        self.tracker.backfill(self.cfg.model)         # versions MLflow missed (it was down, or the trainer died)

    # -- the loop ----------------------------------------------------------------------------------------
    @staticmethod
    def _caught_up(consumer) -> bool:
        """Whether the consumer has its partitions and has read each to the end it had at this look: before
        that, the ledger lacks votes that Kafka already acknowledged, and a run would train without them."""
        parts = consumer.assignment()
        if not parts:
            return False
        ends = consumer.end_offsets(list(parts))
        return all(consumer.position(tp) >= ends[tp] for tp in parts)

    def sweep_decoys(self) -> int:
        """/predict's images expire after DECOY_RETENTION_DAYS: by an S3 lifecycle rule, set here (and by
        dev/start.sh) where the store takes one; where it does not, by this sweep, which lists decoys/ (a
        listing of a week of traffic: only where there is no rule). A voted image was copied to images/."""
        days = self.settings.s3.decoy_retention_days
        if self._decoy_rule is None:
            self._decoy_rule = self.store.expire(DECOY_PREFIX, days)
        if self._decoy_rule:
            return 0
        gone = self.store.delete_older_than(DECOY_PREFIX, days * 86400)
        if gone:
            print(f"[consume] {gone} decoy images older than {days} days deleted", flush=True)
        return gone

    def run(self, max_runs: int | None = None, exit_when_idle_s: float | None = None) -> list:
        """Ingest and train until stopped (SIGTERM), `max_runs` training runs, or `exit_when_idle_s` without a
        record or a run, counted from when the consumer has its partitions."""
        signal.signal(signal.SIGTERM, self.stop)
        lease = Lease(self.settings.db.url or "", self.cfg.model, self.cfg.group)
        if not lease.acquire(stop=lambda: self._stop, on_wait=lambda why: print(
                f"[consume] standby for {self.cfg.model} (group '{self.cfg.group}'): {why}; waiting", flush=True)):
            return []
        print(f"[consume] active trainer for {self.cfg.model} (group '{self.cfg.group}')", flush=True)
        try:
            return self._run_active(lease, max_runs, exit_when_idle_s)
        finally:
            lease.release()

    def _run_active(self, lease: Lease, max_runs: int | None, exit_when_idle_s: float | None) -> list:
        if self.cfg.metrics_port:
            from prometheus_client import start_http_server
            start_http_server(self.cfg.metrics_port, addr=self.cfg.metrics_bind)
            print(f"[consume] metrics on http://{self.cfg.metrics_bind}:{self.cfg.metrics_port}/metrics", flush=True)
        try:
            if self.cfg.reconcile_every_s > 0:
                self.reconcile()
        except Unavailable as err:            # the loop reconciles again every reconcile_every_s
            print(f"[consume] could not reconcile yet ({err.message})", flush=True)
        # Static membership: a restarted trainer (a crash, a new pod) takes its partitions back at once instead
        # of waiting for its old session to time out. One trainer per group, as the ledger needs.
        topics = (self.topic,) if self.commands == "none" else (self.topic, self.commands)
        consumer = make_consumer(self.settings.kafka, topics, self.cfg.group, max_poll_records=500,
                                 group_instance_id=f"{self.cfg.group}-learner")
        print(f"[consume] consuming '{self.topic}' as group '{self.cfg.group}' into the ledger "
              f"(train: {self.cfg.min_votes} new votes or {self.cfg.max_wait_s}s)", flush=True)
        outcomes: list = []
        # A run trains on its own thread, so the votes keep flowing into the ledger and the canary keeps being
        # judged meanwhile (a run takes about a minute on 2 cores). One run at a time.
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="training-run")
        running: tuple[RunPlan, Future] | None = None
        caught_up = False                 # no training run before the backlog in Kafka is in the ledger
        last_activity = last_reconcile = last_canary = time.time()
        last_sweep, last_lease = 0.0, time.time()
        try:
            while not self._stop:
                polled = consumer.poll(timeout_ms=500)
                if not consumer.assignment():
                    last_activity = time.time()       # not idle while the group is still being joined
                records = [r for batch in polled.values() for r in batch]
                if records:
                    last_activity = time.time()
                    if not process_then_commit(consumer, polled, self.ingest, "consume", INGEST_RETRY_S)[0]:
                        continue
                caught_up = caught_up or self._caught_up(consumer)
                try:
                    if running is not None and running[1].done():
                        outcome = self.settle(*running)
                        running = None
                        if outcome is not None:
                            outcomes.append(outcome)
                        if max_runs and len(outcomes) >= max_runs:
                            break
                    trigger = self.due() if caught_up and running is None else None
                    if trigger:
                        plan = self.plan(trigger)
                        if plan is not None:
                            running = (plan, worker.submit(self.execute, plan))
                    if running is not None:
                        last_activity = time.time()      # never idle while a run is in flight
                    elif self.cfg.reconcile_every_s > 0 and time.time() - last_reconcile > self.cfg.reconcile_every_s:
                        self.reconcile()                 # never while a run is in flight: it would finish its row
                        last_reconcile = time.time()
                    if time.time() - last_lease > LEASE_CHECK_S:
                        last_lease = time.time()
                        if not lease.held():             # its session is gone: another trainer may be active now
                            print("[consume] lost the trainer lease (the database session ended); stopping, "
                                  "to be restarted as a standby", flush=True)
                            raise SystemExit(3)
                    if time.time() - last_sweep > SWEEP_EVERY_S:
                        self.sweep_decoys()
                        last_sweep = time.time()
                    if self.cfg.canary_every_s > 0 and time.time() - last_canary > self.cfg.canary_every_s:
                        self.analyse()
                        last_canary = time.time()
                except Unavailable as err:
                    print(f"[consume] {err.message}; trying again shortly", flush=True)
                    time.sleep(INGEST_RETRY_S)
                if exit_when_idle_s and time.time() - last_activity > exit_when_idle_s:
                    break
        finally:
            worker.shutdown(wait=True)         # a run in flight finishes (SIGTERM waits for it, as for a batch)
            if running is not None:
                try:
                    outcome = self.settle(*running)
                    if outcome is not None:
                        outcomes.append(outcome)
                except AfterDarkError as err:  # its row stays unfinished: the reconciler finishes it at the start
                    print(f"[consume] could not record run {running[0].run_id}'s outcome ({err.message})", flush=True)
            consumer.close(autocommit=False)
            self.sink.close()
            self.db.close()
        return outcomes
