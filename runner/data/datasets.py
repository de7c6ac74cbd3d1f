"""Named datasets a config can use as data: ``{dataset: {name: digits, part: x}}``.

- ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 samples, 10 classes),
  read from the copy the package ships (nothing is downloaded). Needs the ``digits`` extra:
  ``pip install -e ".[digits]"``. Pixels are scaled from 0..16 to 0..1.
- ``blobs``: seeded synthetic classification data (Gaussian clusters around random centres),
  for fast tests and examples; the same settings always give the same arrays.

Parts: ``x`` (one feature row per sample: 64 pixels for digits), ``images`` (digits only,
(8, 8) per sample), ``labels`` (integer class per sample), ``onehot`` (one row of 0/1 per
sample). ``shuffle`` reorders the rows by a permutation drawn from ``seed`` (every part the
same way); ``start`` then skips rows and ``rows`` keeps the next ones only (blobs draws
``start + rows``); ``keep_classes`` / ``drop_classes`` last keep / leave out the rows of
those classes. So two configs can
take disjoint windows of one shuffled dataset (train on one, score the other).
"""

from __future__ import annotations

import functools

import numpy as np

from runner import streams
from runner.config.schema import DatasetSpec
from runner.data.budget import refuse_above
from runner.errors import ConfigError


def drawn_bytes(spec: DatasetSpec) -> int:
    """Memory that drawing blobs takes at its peak, from the settings alone: the points,
    their centres and noise in float64, the labels, and a onehot part. (digits: a fixed
    1,797 rows, about 3 MB, not counted.)"""
    if spec.name != "blobs":
        return 0
    rows = spec.start + (spec.rows or 600)
    onehot = spec.classes if spec.part == "onehot" else 0
    return (rows * (3 * spec.features + 2 + onehot) + spec.classes * spec.features) * 8


def load(spec: DatasetSpec, config_path: str, max_bytes: float | None = None) -> np.ndarray:
    """The requested part as a read-only array, batch first (labels: int64). With
    ``max_bytes``, a dataset whose settings ask for more memory is refused before drawing."""
    refuse_above(
        drawn_bytes(spec),
        max_bytes,
        f"{config_path}.dataset.rows",
        f"drawing blobs with {spec.start + (spec.rows or 600):,} rows of {spec.features} features",
        "ask for fewer rows or features",
    )
    if spec.name == "digits":
        images, labels = _digits(config_path)
        classes = 10
    else:
        images, labels = _blobs(
            spec.start + (spec.rows or 600), spec.features, spec.classes, spec.spread, spec.seed
        )
        classes = spec.classes
    if spec.shuffle:
        order = streams.generator(spec.seed, streams.DATASET_ORDER).permutation(len(labels))
        images, labels = images[order], labels[order]
    if spec.start >= len(labels):
        raise ConfigError.one(
            f"{config_path}.dataset.start",
            f"{spec.name} has {len(labels)} rows, asked to skip {spec.start}",
        )
    images, labels = images[spec.start :], labels[spec.start :]
    if spec.rows is not None:
        if spec.rows > len(labels):
            raise ConfigError.one(
                f"{config_path}.dataset.rows",
                f"{spec.name} has {len(labels) + spec.start} rows, asked for {spec.rows}"
                + (f" after skipping {spec.start}" if spec.start else ""),
            )
        images, labels = images[: spec.rows], labels[: spec.rows]
    for key, keeps in (("keep_classes", True), ("drop_classes", False)):
        chosen = getattr(spec, key)
        if chosen is None:
            continue
        unknown = sorted(set(chosen) - set(range(classes)))
        if unknown:
            raise ConfigError.one(
                f"{config_path}.dataset.{key}",
                f"{spec.name} has classes 0..{classes - 1}, found {unknown}",
            )
        keep = np.isin(labels, chosen) == keeps
        images, labels = images[keep], labels[keep]
        if not len(labels):
            raise ConfigError.one(f"{config_path}.dataset.{key}", "no row is left")
    if spec.part == "labels":
        out = labels
    elif spec.part == "onehot":
        out = np.zeros((len(labels), classes))
        out[np.arange(len(labels)), labels] = 1.0
    elif spec.part == "images":
        out = images
    else:
        out = images.reshape(len(images), -1)
    out = np.array(out)
    out.flags.writeable = False
    return out


def _digits(config_path: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        return _load_digits()
    except ImportError:
        raise ConfigError.one(
            f"{config_path}.dataset.name",
            "the digits dataset is read from "
            "scikit-learn's bundled copy, and scikit-learn is not installed: "
            'pip install -e ".[digits]"',
        ) from None


@functools.cache
def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images / 16.0, bunch.target.astype(np.int64)


def _blobs(
    rows: int, features: int, classes: int, spread: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = streams.generator(seed, streams.DATASET_POINTS)
    centres = rng.uniform(-4.0, 4.0, size=(classes, features))
    labels = rng.integers(0, classes, size=rows)
    points = centres[labels] + rng.normal(0.0, spread, size=(rows, features))
    return points, labels.astype(np.int64)
