"""Which voted images may be trained on: a deterministic split by the image's sha256. Pure.

Example:
    split_of("3fa2…")                   # "train" or "evaluation", the same answer everywhere, forever
    split_of("3fa2…", fraction=0.0)     # "train": no evaluation split

IMPORTANT: an image in the evaluation split is never trained on, by any version, whoever votes on it and
however often: the split depends on the image's bytes alone, so the trainer, the canary analysis and
`compare` agree on it without talking to each other. Changing EVALUATION_FRACTION moves images between the
splits; a version records the fraction it was trained with (metadata.data.split).
"""
from __future__ import annotations

EVALUATION_FRACTION = 0.2
TRAIN, EVALUATION = "train", "evaluation"


def split_of(image_sha256: str, fraction: float = EVALUATION_FRACTION) -> str:
    """"evaluation" for about `fraction` of all images (the first 32 bits of the sha256, as a number in
    [0, 1), below `fraction`), "train" for the rest."""
    return EVALUATION if int(image_sha256[:8], 16) / 2 ** 32 < fraction else TRAIN
