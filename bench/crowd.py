#!/usr/bin/env python3
"""Does the crowd make the model better on images it has never seen? Simulated crowds vote on a kind of
portrait the bootstrap never drew (site crews in hard hats and hi-vis vests, not engineers: portraits.synth.drifted), and the loop runs as the
trainer runs it: Dawid-Skene consensus with the dataset as gold (layers.ledger.consensus), the evaluation split
(layers.ledger.split), the trainer's own fine-tuning of the backbone, head fit and gates (training_job.pipeline:
Trainer.tuned, then the head), and the canary's paired
sequential test (layers.analysis.paired) on images neither version trained on.

In process, against the stack's MinIO: the live version and its backbone are read from the registry, every
image is stored at images/<sha256> and embedded by the real backbone. Kafka, the ledger's table and the
functions are not in this loop (tests/functions/test_loop.py runs the loop through them).

Per crowd and seed it reports: accuracy on a separate, never-voted set of new-kind portraits before and after
the promoted version; the hold-out accuracy before and after; votes to the first promotion; promotions; and
the same consensus counted by majority vote, for comparison.

    PYTHONPATH=. python bench/crowd.py --model engineer [--version 1] [--seeds 3] [--null-seeds 10] [--votes 100]
    PYTHONPATH=. python bench/crowd.py --stack [--crowds honest] [--votes 100]     # through `make run`'s stack

--stack runs one crowd per seed end to end instead: /predict traffic and /fix votes through the gateway (one
principal per voter, through the delegating token), Kafka, the ledger, the trainer and its canary policy,
and measures the votes and the seconds from the last vote to the promotion, and /predict on the unseen set.
"""
from __future__ import annotations

import argparse
import io
import platform
import random
import time
from dataclasses import dataclass, field

import numpy as np

from bench.predict_latency import record
from layers.analysis.paired import evidence
from layers.config import Settings
from layers.images import sha256_hex
from layers.ledger import LatestVote, decide
from layers.registry import AutoPromotion, Registry, image_key
from layers.store import BlobStore
from training_job import head as H
from training_job.config import TrainConfig
from training_job.examples import Example, examples
from layers.analysis.canary import judge, supersedes
from training_job.pipeline import Trainer, accuracy_reasons
from portraits.synth import LABELS, drifted, to_jpeg

OTHER = {"engineer": "non_engineer", "non_engineer": "engineer"}
CROWDS = {
    "honest": {"h1": 0.95, "h2": 0.9, "h3": 0.85, "h4": 0.8, "h5": 0.7},
    "honest + adversary + spammer": {"h1": 0.95, "h2": 0.9, "h3": 0.85, "h4": 0.8, "h5": 0.7, "adv": 0.0, "spam": 0.5},
    "all random": {f"r{i}": 0.5 for i in range(5)},
    "all flipped (poison)": {f"p{i}": 0.0 for i in range(5)},
}
PER_IMAGE = 1            # voters per traffic image: with one, 100 votes label twice the images, for training and
                         # for the canary's evidence (Dawid-Skene weighs each voter by gold and by overlap; with
                         # two, fewer canaries were decided within 100 votes: bench/RESULTS.md, "Crowds")
GOLD_EVERY = 5           # every 5th question is a known-answer image from the dataset's hold-out
BATCH = 30               # the trainer's min_votes: a run after every 30 new votes (`consume --min-votes 30`);
                         # with 10, the first canaries learn from 3 images and use up alpha (bench/RESULTS.md)


@dataclass
class Version:
    head: H.Head
    backbone: object              # its backbone (the root, or the root fine-tuned on its corrections)
    fp: str
    trained: set[str]
    holdout: float
    watermark: int
    fixes: int = 0


@dataclass
class Outcome:
    crowd: str
    seed: int
    promotions: int = 0
    votes_to_first: int | None = None
    new_before: float = 0.0
    new_after: float = 0.0
    hold_before: float = 0.0
    hold_after: float = 0.0
    seconds_to_first: float | None = None
    ds_right: int = 0
    ds_accepted: int = 0
    mv_right: int = 0
    mv_accepted: int = 0
    decisions: list[str] = field(default_factory=list)
    new_at_promotions: list[float] = field(default_factory=list)
    versions: list[tuple] = field(default_factory=list)     # each gated version: (votes, corrections trained
                                                            # on, unseen new look, hold-out)


class Lab:
    def __init__(self, settings: Settings, model: str, version: int | None = None) -> None:
        self.store = BlobStore(settings.s3)
        reg = Registry(self.store)
        live = version or reg.control()[0].models[model].live
        self.meta = reg.metadata(model, live)
        self.cfg = TrainConfig(model=model, dataset=self.meta.data["dataset"], input_size=self.meta.input_size,
                               alpha=self.meta.architecture["alpha"], seed=self.meta.params.get("seed", 1))
        self.trainer = Trainer(self.store, None, self.cfg)
        self.items, _ = self.trainer.dataset()
        self.backbone, self.info = self.trainer.backbones.for_version(self.meta)
        self.fp = self.info["fingerprint"]
        arrays = np.load(io.BytesIO(reg.fetch_artifact(model, live, "head.npz", self.meta)))
        self.live = Version(H.Head(arrays["kernel"], arrays["bias"]), self.backbone, self.fp, set(), 0.0, 0)
        self.hold = [Example(i.sha256, i.key, i.label, "holdout", "dataset") for i in self.items if i.split == "holdout"]
        self.gold = {i.sha256: i.label for i in self.items}
        self.label_idx = {l: j for j, l in enumerate(self.trainer.labels)}
        self.live.holdout = self.accuracy(self.live, self.hold)

    def new_kind(self, first: int, n: int) -> list[Example]:
        out = []
        for i in range(first, first + n):
            img, label, _ = drifted(i)
            jpeg = to_jpeg(img)
            sha = sha256_hex(jpeg)
            self.store.put_if_absent(image_key(sha), jpeg)
            out.append(Example(sha, image_key(sha), label, "test", "new-kind"))
        return out

    def accuracy(self, v: Version, exs: list[Example]) -> float:
        probs = v.head.predict(self.trainer.embedder.embed(v.backbone, v.fp, exs))
        return float((probs.argmax(axis=1) == np.array([self.label_idx[e.label] for e in exs])).mean())

    def answers(self, v: Version, shas: list[str]) -> dict[str, str]:
        if not shas:
            return {}
        exs = [Example(s, image_key(s) if s not in self.gold else self._key(s), "engineer", "x", "x") for s in shas]
        probs = v.head.predict(self.trainer.embedder.embed(v.backbone, v.fp, exs))
        return {s: self.trainer.labels[int(p.argmax())] for s, p in zip(shas, probs)}

    def _key(self, sha: str) -> str:
        return next(i.key for i in self.items if i.sha256 == sha)


def run(lab: Lab, crowd: str, seed: int, max_votes: int, traffic: list[Example], unseen: list[Example],
        per_image: int = PER_IMAGE, batch: int = BATCH, policy: AutoPromotion = AutoPromotion(enabled=True)) -> Outcome:
    """One crowd, as the trainer and the canary policy run it: a version after every `batch` new votes (the
    gates as in training_job.pipeline), the newest gated version becomes the canary, and training_job.canary's
    judge decides on the images neither it nor live trained on (promote, roll back, or supersede)."""
    rng = random.Random(seed)
    voters = CROWDS[crowd]
    out = Outcome(crowd, seed, new_before=lab.accuracy(lab.live, unseen), hold_before=lab.live.holdout)
    live, canary, newer = lab.live, None, None
    generation = 0                                       # canaries tried against this live version
    latest: list[LatestVote] = []
    seq, trained_at, t_last_vote = 0, 0, 0.0
    questions = iter(rng.sample(traffic, len(traffic)))
    truth = {e.sha256: e.label for e in traffic}
    while seq < max_votes:
        item = next(questions)
        asked = [item] + ([rng.choice(lab.hold)] if rng.random() < 1 / GOLD_EVERY else [])
        for q in asked:
            for p in rng.sample(sorted(voters), min(per_image, len(voters))):
                if seq >= max_votes:
                    break
                seq += 1
                label = q.label if rng.random() < voters[p] else OTHER[q.label]
                latest.append(LatestVote(q.sha256, q.key, label, p, f"{seed}-{seq}", seq))
                t_last_vote = time.perf_counter()
        agreed = decide(latest, known=lab.gold, labels=LABELS)
        if seq - trained_at >= batch:
            trained_at = seq
            exs = examples(lab.items, agreed)
            backbone, info = lab.trainer.backbones.tuned(exs, lab.backbone, lab.info, lab.cfg, lab.trainer.labels)
            fitted = lab.trainer._fit(exs, backbone, info["fingerprint"], lab.cfg)
            if not accuracy_reasons(fitted.accuracy, lab.cfg, lab.meta):
                newer = Version(fitted.head, backbone, info["fingerprint"], {e.sha256 for e in exs if e.source == "fix" and e.split == "train"},
                                fitted.accuracy, seq, len(agreed.accepted))
                out.versions.append((seq, len(newer.trained), round(lab.accuracy(newer, unseen), 3), round(newer.holdout, 3)))
        if canary is None and newer is not None:
            canary, newer = newer, None
        if canary is None:
            continue
        seen = live.trained | canary.trained
        honest = {s: a["label"] for s, a in agreed.accepted.items() if s not in seen}
        a_live, a_can = lab.answers(live, list(honest)), lab.answers(canary, list(honest))
        ev = evidence((a_can[s] == l, a_live[s] == l) for s, l in honest.items())
        qualifies = newer is not None and supersedes(newer.fixes, canary.fixes)
        decision, why, _ = judge(policy, ev, generation, (canary.holdout, live.holdout, len(lab.hold)), False,
                                 seq if qualifies else None)
        if decision == "wait":
            continue
        out.decisions.append(f"{decision} at {seq} votes: {why}")
        if decision == "promote":
            out.promotions += 1
            out.new_at_promotions.append(round(lab.accuracy(canary, unseen), 3))
            if out.votes_to_first is None:
                out.votes_to_first = seq
                out.seconds_to_first = round(time.perf_counter() - t_last_vote, 2)
            live, canary, generation = canary, None, 0
        else:
            canary, generation = None, generation + 1
    agreed = decide(latest, known=lab.gold, labels=LABELS)
    majority = decide(latest, known=lab.gold, labels=LABELS, reliability=False)
    out.ds_accepted, out.mv_accepted = len(agreed.accepted), len(majority.accepted)
    out.ds_right = sum(a["label"] == truth.get(s) for s, a in agreed.accepted.items())
    out.mv_right = sum(a["label"] == truth.get(s) for s, a in majority.accepted.items())
    out.new_after, out.hold_after = lab.accuracy(live, unseen), live.holdout
    return out


def through_the_stack(gateway: str, crowd: str, seed: int, max_votes: int, lab: "Lab", traffic: list[Example],
                      unseen: list[Example], per_image: int, wait_s: float = 120) -> dict:
    """One crowd end to end through the gateway; returns what it measured."""
    import json
    import urllib.request
    import uuid
    from bench.predict_latency import api_token
    token = api_token()

    def call(method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> dict:
        req = urllib.request.Request(f"{gateway}/function/{path}", data=body, method=method,
                                     headers={"Authorization": f"Bearer {token}", **(headers or {})})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())

    jpeg_of = lambda e: lab.store.get(e.key).body
    predict = lambda e: call("POST", "predict", jpeg_of(e), {"Content-Type": "image/jpeg"})
    versions = lambda: {r["version"]: r["role"] for r in call("GET", "models")["versions"]}
    call("POST", "models/auto", json.dumps({"on": True}).encode(), {"Content-Type": "application/json"})
    before = versions()
    live = next(v for v, r in before.items() if r == "live")
    right = lambda: sum(predict(e)["label"] == e.label for e in unseen)
    out = {"crowd": crowd, "seed": seed, "live_before": live, "unseen_before": right() / len(unseen)}
    rng, run = random.Random(seed), uuid.uuid4().hex[:6]
    voters, seq, promoted, t_last = CROWDS[crowd], 0, None, time.time()
    questions = iter(rng.sample(traffic, len(traffic)))
    while seq < max_votes and promoted is None:
        item = next(questions)
        predict(item)                                   # live traffic: a decoy, as a user's request makes
        for q in [item] + ([rng.choice(lab.hold)] if rng.random() < 1 / GOLD_EVERY else []):
            for p in rng.sample(sorted(voters), min(per_image, len(voters))):
                if seq >= max_votes:
                    break
                label = q.label if rng.random() < voters[p] else OTHER[q.label]
                call("POST", f"fix?label={label}&user=crowd-{run}-{p}", jpeg_of(q),
                     {"Content-Type": "image/jpeg", "Idempotency-Key": f"{run}-{seq}"})
                seq, t_last = seq + 1, time.time()
                time.sleep(0.35)                        # 5 voters under the 30-a-minute limit each
        promoted = next((v for v, r in versions().items() if r == "live" and v not in before), None)
    deadline = time.time() + wait_s
    while promoted is None and time.time() < deadline:
        promoted = next((v for v, r in versions().items() if r == "live" and v not in before), None)
        time.sleep(1)
    out.update(votes=seq, promoted=promoted, seconds_after_last_vote=round(time.time() - t_last, 1) if promoted else None)
    if promoted:
        time.sleep(3)                                    # the functions poll the control document
        out["unseen_after"] = right() / len(unseen)
    out["audit"] = [h["change"] for h in call("GET", "models/history")["history"][:6]
                    if "auto-promotion" in h.get("actor", "")]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=Settings.from_env().model)
    ap.add_argument("--version", type=int, default=None,
                    help="the version the crowds start from (default: the live one; after `make demo`, say 1)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--null-seeds", type=int, default=10)
    ap.add_argument("--votes", type=int, default=100)
    ap.add_argument("--per-image", type=int, default=PER_IMAGE, help="voters per traffic image")
    ap.add_argument("--batch", type=int, default=BATCH, help="new votes per training run (the trainer's min_votes)")
    ap.add_argument("--crowds", default=",".join(CROWDS), help="which crowds, comma-separated")
    ap.add_argument("--stack", action="store_true", help="through the gateway, Kafka, the ledger and the trainer")
    ap.add_argument("--gateway", default="http://127.0.0.1:8080")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.time()
    lab = Lab(Settings.from_env(), args.model, args.version)
    traffic, unseen = lab.new_kind(0, 200), lab.new_kind(10_000, 200)
    if args.stack:
        lines = [f"\n## Crowds through the stack (bench/crowd.py --stack, {time.strftime('%Y-%m-%d')}, "
                 f"{platform.machine()}, at most {args.votes} votes)\n",
                 f"`make run`'s stack (model `{args.model}`, its trainer with its defaults), {args.per_image} voter(s) "
                 f"per image, every {GOLD_EVERY}th question a hold-out image; the unseen set: 50 new-look portraits.\n"]
        for crowd in [c for c in CROWDS if c in args.crowds.split(",")]:
            for seed in range(1, args.seeds + 1):
                r = through_the_stack(args.gateway, crowd, seed, args.votes, lab, traffic, unseen[:50], args.per_image)
                print(r, flush=True)
                lines.append(f"- {crowd}, seed {seed}: {r['votes']} votes; promoted: "
                             f"{'v' + str(r['promoted']) if r['promoted'] else 'none'}"
                             + (f", {r['seconds_after_last_vote']} s after the last vote; unseen new look "
                                f"{r['unseen_before']:.2f} -> {r['unseen_after']:.2f}" if r["promoted"] else
                                f"; unseen new look {r['unseen_before']:.2f}")
                             + "; the policy's audit: " + " | ".join(r["audit"][:3]))
        record(lines) if not args.no_record else print("\n".join(lines))
        return 0
    results = []
    chosen = [c for c in CROWDS if c in args.crowds.split(",")]
    for crowd in chosen:
        seeds = args.seeds if crowd.startswith("honest") else args.null_seeds
        for seed in range(1, seeds + 1):
            o = run(lab, crowd, seed, args.votes, traffic, unseen, per_image=args.per_image, batch=args.batch)
            results.append(o)
            print(f"{crowd:30s} seed {seed}: promotions {o.promotions}, new look {o.new_before:.3f} -> "
                  f"{o.new_after:.3f}, hold-out {o.hold_before:.3f} -> {o.hold_after:.3f}, votes to first "
                  f"{o.votes_to_first}; DS {o.ds_right}/{o.ds_accepted} right, majority {o.mv_right}/{o.mv_accepted}",
                  flush=True)
    lines = [f"\n## Crowds: does voting teach the model a new kind of portrait? (bench/crowd.py, "
             f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {args.votes} votes per run)\n",
             f"Model `{args.model}` v{lab.meta.version} (backbone {lab.fp[:12]}), its dataset `{lab.cfg.dataset}`; "
             f"new look: site crews (hard hat, hi-vis vest; not engineers); {args.per_image} voter(s) per image, "
             f"every {GOLD_EVERY}th question a known-answer hold-out image; a version every {args.batch} votes (the root "
             f"backbone fine-tuned {lab.cfg.tune_epochs} epochs on the dataset and the corrections, then the head); the canary "
             f"policy's judge at alpha 0.05 (split among the canaries), supersession at twice the voted images. "
             f"Unseen set: 200 new-kind portraits nobody voted on. {time.time() - t0:.0f} s in all.\n",
             "| crowd | seeds | promotions | new look before -> after (mean, min) | hold-out before -> after (worst) "
             "| votes to first promotion | consensus right/accepted: Dawid-Skene vs majority |",
             "|---|---|---|---|---|---|---|"]
    for crowd in chosen:
        rs = [o for o in results if o.crowd == crowd]
        firsts = [o.votes_to_first for o in rs if o.votes_to_first is not None]
        lines.append(
            f"| {crowd} | {len(rs)} | {sum(o.promotions for o in rs)} in {sum(o.promotions > 0 for o in rs)} runs | "
            f"{np.mean([o.new_before for o in rs]):.3f} -> {np.mean([o.new_after for o in rs]):.3f} "
            f"(min {min(o.new_after for o in rs):.3f}) | {rs[0].hold_before:.3f} -> "
            f"{min(o.hold_after for o in rs):.3f} | {', '.join(map(str, firsts)) or 'none'} | "
            f"{sum(o.ds_right for o in rs)}/{sum(o.ds_accepted for o in rs)} vs "
            f"{sum(o.mv_right for o in rs)}/{sum(o.mv_accepted for o in rs)} |")
    lines += ["", "Each run (the canary decisions, with their evidence):", ""]
    for o in results:
        lines.append(f"- {o.crowd}, seed {o.seed}: new look {o.new_before:.3f} -> {o.new_after:.3f}, hold-out "
                     f"{o.hold_before:.3f} -> {o.hold_after:.3f}; " + ("; ".join(o.decisions) or "no canary decided")
                     + "; versions (votes, corrections, new look, hold-out): "
                     + (", ".join(f"({v}, {c}, {n:.2f}, {h:.3f})" for v, c, n, h in o.versions) or "none"))
    if not args.no_record:
        record(lines)
    else:
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
