"""A cold trainer reads the dataset's embeddings in one object (the pack), and they are the per-image ones."""
from __future__ import annotations

import io

import numpy as np

from layers.registry import Registry, embedding_key, embedding_pack_key
from training_job.config import TrainConfig
from training_job.examples import Example


class CountingStore:
    """The store, counting the objects read."""
    def __init__(self, store) -> None:
        self.store, self.gets = store, 0

    def get(self, key: str, **kwargs):
        self.gets += 1
        return self.store.get(key, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.store, name)


def test_a_cold_trainer_reads_the_dataset_embeddings_in_one_object(bootstrapped, store):
    from training_job.pipeline import Trainer
    meta = Registry(store).metadata(bootstrapped, 1)
    fp = meta.backbone["fingerprint"]
    assert store.exists(embedding_pack_key(fp))                   # the bootstrap embedded the dataset, and packed it
    counting = CountingStore(store)
    trainer = Trainer(counting, None, TrainConfig(model=bootstrapped, dataset=meta.data["dataset"],
                                                  input_size=meta.input_size))
    items, _ = trainer.dataset()
    exs = [Example(i.sha256, i.key, i.label, i.split, "dataset") for i in items]
    before = counting.gets
    emb = trainer.embedder.embed(None, fp, exs)        # no backbone: every embedding comes from S3, none is computed
    assert counting.gets - before == 1 and emb.shape[0] == len(exs) > 1000
    for e, vec in list(zip(exs, emb))[::100]:
        assert np.array_equal(np.load(io.BytesIO(store.get(embedding_key(fp, e.sha256)).body)), vec)
    trainer.embedder.embed(None, fp, exs)
    assert counting.gets - before == 1                             # warm: nothing read again

    # an unreadable pack is no poison pill: a cold trainer reads the images one by one, and packs them again
    store.put(embedding_pack_key(fp), b"PK\x03\x04 not a zip")
    again = Trainer(store, None, trainer.cfg).embedder.embed(None, fp, exs)
    assert np.array_equal(again, emb)
    with np.load(io.BytesIO(store.get(embedding_pack_key(fp)).body)) as pack:
        assert len(pack["sha256"]) >= len(exs)
