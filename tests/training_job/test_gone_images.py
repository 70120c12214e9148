"""A voted image whose object is not in S3 (deleted by hand, or a ledger row naming an object that never
landed) is left out of a training run, never the reason every run fails (tests/training_job/test_replay.py
has the replayer's side)."""
from __future__ import annotations

from layers.images import sha256_hex
from training_job.config import TrainConfig
from training_job.examples import Example
from portraits.synth import portrait, to_jpeg


def test_a_voted_image_that_is_gone_leaves_the_run_not_the_ledger(store, uid):
    """The trainer trains on the examples whose image is stored, instead of failing at every retry on one
    ledger row that names an object that is not there. Dataset images are not looked up."""
    from training_job.pipeline import Trainer          # TensorFlow: imported when the test runs
    kept = to_jpeg(portrait(96_200)[0])
    store.put(f"images/{sha256_hex(kept)}", kept)
    gone = sha256_hex(f"never stored {uid}".encode())
    exs = [Example(sha256_hex(kept), f"images/{sha256_hex(kept)}", "engineer", "train", "fix"),
           Example(gone, f"images/{gone}", "engineer", "train", "fix"),
           Example("d" * 64, "datasets/not-looked-up", "engineer", "train", "dataset")]
    trainer = Trainer(store, None, TrainConfig(model=f"m-{uid}"))
    assert [e.sha256 for e in trainer.present(exs)] == [sha256_hex(kept), "d" * 64]
