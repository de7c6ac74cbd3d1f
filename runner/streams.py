"""Every random stream of a run, in one place.

Each stream is a NumPy Generator seeded by ``[seed, STREAM]``: the run's seed (or a data
source's own seed) and a fixed stream number. Separate streams never shift each other, so
adding dropout does not change the initial weights, and changing the shuffle does not change
random inputs. These numbers are part of reproducibility: changing one changes results.
"""

from __future__ import annotations

import numpy as np

WEIGHT_INIT = 0  # every layer's initializer, in config order, W before b
DROPOUT = 1  # dropout masks (and any other train-phase noise) of forward passes
SHUFFLE = 2  # the per-epoch order of training rows in task=fit
RANDOM_DATA = 7919  # {random: ...} inputs and targets
DATASET_POINTS = 4049  # the synthetic blobs dataset: centres, labels and points
DATASET_ORDER = 4051  # the shuffle of a dataset's rows ({dataset: {shuffle: true}})


def generator(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


def init_rng(seed: int) -> np.random.Generator:
    """The weight-initialization stream (separate from dropout's)."""
    return generator(seed, WEIGHT_INIT)


def dropout_rng(seed: int) -> np.random.Generator:
    return generator(seed, DROPOUT)


def shuffle_rng(seed: int) -> np.random.Generator:
    return generator(seed, SHUFFLE)
