"""Training configuration: one value type with documented defaults, read from the CLI/environment once."""
from __future__ import annotations

from dataclasses import asdict, dataclass

DEFAULT_ALPHA = 0.35          # MobileNetV2 width multiplier
DEFAULT_INPUT_SIZE = 96       # valid for weights="imagenet" too (96/128/160/192/224)
DEFAULT_DATASET = "synthetic"
DEFAULT_DATASET_SIZE = 2400      # a 486-image hold-out: accuracy to about ±1.2 points (bench/RESULTS.md)
PARITY_TOLERANCE_FP32 = 1e-4  # max |p_keras - p_tflite| allowed for fp32 (measured: ~1e-6)
PARITY_TOLERANCE_INT8 = 0.15  # int8 is allowed more drift, but must agree on >= 95% of top classes
MIN_TOP1_AGREEMENT_INT8 = 0.95

# The TrainConfig fields that shape a backbone trained here (a head's or the learner's settings do not).
BACKBONE_PARAMS = ("dataset", "dataset_size", "alpha", "input_size", "base", "backbone_epochs", "batch_size",
                   "learning_rate", "warmup_epochs", "seed")


@dataclass(frozen=True)
class TrainConfig:
    model: str = "engineer"
    dataset: str = DEFAULT_DATASET
    dataset_size: int = DEFAULT_DATASET_SIZE
    alpha: float = DEFAULT_ALPHA
    input_size: int = DEFAULT_INPUT_SIZE
    base: str = "none"              # imagenet | none | s3://<bucket>/<key of a .weights.h5>
    backbone_epochs: int = 16       # bootstrap only, when base=none: train the backbone on the dataset
    head_c: float = 1.0             # the head's inverse L2 strength (logistic regression, L-BFGS)
    head_max_iter: int = 1000
    tune_epochs: int = 2            # a retrain with corrections first fine-tunes its root backbone this long on the
                                    # dataset plus the corrections (0: the head alone, on the frozen backbone). A
                                    # frozen backbone learns a new look only by moving every other answer: 40
                                    # corrections, head alone: new look 0.77, hold-out -2.5 points; tuned: 0.97,
                                    # -0.2 (bench/RESULTS.md, "Fine-tuning")
    tune_learning_rate: float = 1e-4   # Adam's step while fine-tuning (BatchNorm statistics stay frozen)
    fix_weight: float = 30.0        # a consensus correction weighs this many dataset images in the head's fit
                                    # (10 flipped none of 8 answers the bootstrapped backbone got wrong; 30: 5)
    batch_size: int = 32
    learning_rate: float = 6e-3     # the backbone's Adam step (bootstrap); 1e-3 reached 0.87, 6e-3 0.92-0.95
    warmup_epochs: int = 0          # >0: the step rises linearly to learning_rate over this many epochs, then
                                    # decays to 0 along a cosine (0: a constant step)
    seed: int = 1
    quantize: str = "fp32"          # fp32 | int8
    min_accuracy: float = 0.75      # absolute gate on hold-out accuracy
    max_regression: float = 0.05    # a retrain may lose at most this much hold-out accuracy vs its parent
    # online learning
    topic: str = ""                # default: the fixes topic of the settings (KAFKA_TOPIC_PREFIX + "fixes")
    group: str = "trainer"
    commands_topic: str = ""        # default: the settings' commands topic; "none": read no commands
    min_votes: int = 30             # train as soon as this many new votes are in the ledger (fewer, stronger
                                    # canaries: bench/RESULTS.md, "Crowds")...
    max_wait_s: float = 30.0        # ...or this long after the oldest untrained one arrived
    min_votes_per_image: int = 1    # an image needs this many principals' votes before its consensus counts
    min_posterior: float = 0.6      # ...and its winning class this posterior (Dawid-Skene), else it is quarantined
    evaluation_fraction: float = 0.2   # voted images in the evaluation split (by sha256): never trained on
    retry_backoff_s: float = 30.0   # a refused or failed run is retried after this, doubling...
    retry_backoff_max_s: float = 600.0   # ...up to this
    reconcile_every_s: float = 60.0  # how often the reconciler looks for unregistered versions (0: never, for a
                                     # learner that only ingests: it must not register what another process made)
    canary_every_s: float = 3.0     # how often the canary analysis looks (when the model's policy is on; 0: never)
    metrics_port: int = 0           # serve Prometheus metrics on 127.0.0.1:<port> (0: off; in a pod: 0.0.0.0)
    metrics_bind: str = "127.0.0.1"
    decoy_topic: str = ""           # the traffic the canary analysis replays (default: the settings' predict-decoy)
    canary_window_s: float = 0.0    # ...this far back (0: as long as decoys are kept, DECOY_RETENTION_DAYS)

    def params(self) -> dict:
        return asdict(self)
