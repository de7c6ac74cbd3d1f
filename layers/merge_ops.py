"""The arithmetic of merging several arrays: shared by Merge and Siamese.

Everything here works on full batches (axis 0 is the batch axis); shapes passed to the plan
functions are per-sample (batch excluded). Axis arguments (``concat_axis``, ``dot_axes``) are
legacy full-tensor indices, where 0 would be the batch axis.

``dot_axes`` forms, normalized the same way for ``dot`` and ``cos`` (the legacy code never
normalized them for ``cos``: a deliberate fix):

* negative int ``-k``: the last k axes of each input (default -1: the last axis);
* positive int ``k`` (tensordot-style count): the last k axes of the first input against the
  first k non-batch axes of the second;
* a pair of ints ``[a, b]`` (Keras 1 style): axis a of the first input against axis b of the
  second;
* a pair of lists ``[[a1, a2], [b1, b2]]``: explicit full-tensor axes, paired in order.
  Explicit axes may be negative (counted from the end), never the batch axis.

``cos`` L2-normalizes each input over its contracted axes, then takes the ``dot``
(``normalize=True`` of modern Keras ``Dot``): for 2D inputs it is the legacy
``dot(a, b) / sqrt(dot(a, a) * dot(b, b))``; a zero vector gives 0 instead of the legacy NaN.
"""

from __future__ import annotations

import string
from typing import Any, Literal, NamedTuple

import numpy as np

from layers.base import PlanError, Shape

MergeMode = Literal["sum", "mul", "concat", "ave", "dot", "cos", "max"]
DotAxes = int | list[int] | list[list[int]]

ELEMENTWISE = ("sum", "mul", "ave", "max")
PAIRWISE = ("dot", "cos")
NORM_EPS = 1e-12  # floor of the squared norm in cos (Keras 2 l2_normalize)


# ---- config-time checks ---------------------------------------------------------------------
def check_dot_axes(value: Any) -> Any:
    """Validate the *form* of ``dot_axes`` (ranks are checked at plan time)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value == 0:
            raise ValueError(
                "dot_axes=0 contracts no axis: use -1 (last axis of each input), a "
                "positive count, or explicit pairs such as [[1], [1]]"
            )
        return value
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(
            f"dot_axes must be an int, a pair of ints [a, b], or a pair of lists "
            f"[[a1, ...], [b1, ...]]; found {value!r}"
        )
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        pairs = [[value[0]], [value[1]]]
    elif all(isinstance(v, list) for v in value):
        pairs = value
    else:
        raise ValueError(f"dot_axes pairs must be both ints or both lists, found {value!r}")
    left, right = pairs
    if len(left) != len(right) or not left:
        raise ValueError(f"dot_axes lists must be non-empty and of equal length, found {value!r}")
    for side in pairs:
        if any(not isinstance(a, int) or isinstance(a, bool) for a in side):
            raise ValueError(f"dot_axes entries must be integers, found {value!r}")
        if 0 in side:
            raise ValueError(
                f"dot_axes {value!r} names axis 0, the batch axis; axes are "
                "full-tensor indices starting at 1"
            )
        if len(set(side)) != len(side):
            raise ValueError(f"dot_axes {value!r} repeats an axis")
    return value


# ---- plan --------------------------------------------------------------------------------
def dot_axes_pairs(dot_axes: DotAxes, s0: Shape, s1: Shape) -> tuple[list[int], list[int]]:
    """Per-sample axes (0-based, batch excluded) contracted in each input."""
    r0, r1 = len(s0), len(s1)
    if isinstance(dot_axes, int):
        k = abs(dot_axes)
        if k > r0 or k > r1:
            raise PlanError(
                f"dot_axes={dot_axes} needs at least {k} non-batch axes in each "
                f"input; per-sample shapes are {s0} and {s1}"
            )
        if dot_axes < 0:  # the last k axes of each
            return list(range(r0 - k, r0)), list(range(r1 - k, r1))
        return list(range(r0 - k, r0)), list(range(k))  # legacy count: last k vs first k
    pairs = [[dot_axes[0]], [dot_axes[1]]] if isinstance(dot_axes[0], int) else dot_axes
    out: list[list[int]] = []
    for i, (side, rank, shape) in enumerate(zip(pairs, (r0, r1), (s0, s1))):
        axes = []
        for a in side:
            per_sample = a - 1 if a > 0 else rank + a
            if not 0 <= per_sample < rank:
                raise PlanError(
                    f"dot_axes {dot_axes} names axis {a} of input {i + 1}, whose "
                    f"per-sample shape {shape} has full-tensor axes 1..{rank}"
                )
            axes.append(per_sample)
        if len(set(axes)) != len(axes):
            raise PlanError(f"dot_axes {dot_axes} names the same axis of input {i + 1} twice")
        out.append(axes)
    return out[0], out[1]


def concat_axis_index(concat_axis: int, shape: Shape) -> int:
    """Full-tensor axis (1..rank) for ``concat_axis`` on inputs of per-sample ``shape``."""
    full = len(shape) + 1
    axis = concat_axis + full if concat_axis < 0 else concat_axis
    if axis == 0:
        raise PlanError(
            f"concat_axis={concat_axis} is the batch axis; use -1 (last axis) or a "
            f"full-tensor axis 1..{full - 1}"
        )
    if not 1 <= axis < full:
        raise PlanError(
            f"concat_axis={concat_axis} is out of range for per-sample shape "
            f"{shape}: use 1..{full - 1} or -1..-{full - 1}"
        )
    return axis


def output_shape(mode: str, shapes: list[Shape], concat_axis: int, dot_axes: DotAxes) -> Shape:
    shapes = [tuple(s) for s in shapes]
    if mode in ELEMENTWISE:
        if len(set(shapes)) != 1:
            raise PlanError(
                f"only inputs of the same shape can be merged with mode {mode!r}; "
                f"per-sample shapes: {shapes}"
            )
        return shapes[0]
    if mode == "concat":
        if len({len(s) for s in shapes}) != 1:
            raise PlanError(f"'concat' needs inputs of the same rank; per-sample shapes: {shapes}")
        axis = concat_axis_index(concat_axis, shapes[0]) - 1  # per-sample
        rest = {s[:axis] + s[axis + 1 :] for s in shapes}
        if len(rest) != 1:
            raise PlanError(
                f"'concat' needs matching shapes except on concat_axis={concat_axis}; "
                f"per-sample shapes: {shapes}"
            )
        s = shapes[0]
        return s[:axis] + (sum(t[axis] for t in shapes),) + s[axis + 1 :]
    s0, s1 = shapes
    ax0, ax1 = dot_axes_pairs(dot_axes, s0, s1)
    for a, b in zip(ax0, ax1):
        if s0[a] != s1[b]:
            raise PlanError(
                f"dimension mismatch in {mode!r} mode: axis {a + 1} of input 1 has "
                f"size {s0[a]}, axis {b + 1} of input 2 has size {s1[b]} (dot_axes="
                f"{dot_axes}, per-sample shapes {s0} and {s1})"
            )
    free = tuple(d for i, d in enumerate(s0) if i not in ax0)
    free += tuple(d for i, d in enumerate(s1) if i not in ax1)
    return free or (1,)


def output_mask(mode: str, has_masks: list[bool]) -> bool:
    """sum/mul/ave/max: AND of the masks; concat: concatenated masks; dot/cos: no mask."""
    return mode not in PAIRWISE and any(has_masks)


# ---- run ---------------------------------------------------------------------------------
def combine_masks(mode: str, xs: list[np.ndarray], masks: list[Any], concat_axis: int) -> Any:
    if mode in PAIRWISE or all(m is None for m in masks):
        return None
    if mode != "concat":
        present = [m for m in masks if m is not None]
        return np.logical_and.reduce(present) if len(present) > 1 else present[0].copy()
    # Keras 2 Concatenate: masks gain a unit feature axis (all-true for unmasked inputs), are
    # concatenated like the data, then reduced with all() over that axis.
    axis = concat_axis_index(concat_axis, xs[0].shape[1:])
    parts = [
        (m if m is not None else np.ones(x.shape[:-1], dtype=bool))[..., None]
        for x, m in zip(xs, masks)
    ]
    return np.concatenate(parts, axis=axis).all(axis=-1)


def einsum_subscripts(r0: int, ax0: list[int], r1: int, ax1: list[int]) -> tuple[str, str, str]:
    """The einsum subscripts of dot/cos: ``(x0's, x1's, the output's)`` for per-sample ranks
    ``r0``, ``r1`` contracting axes ``ax0`` with ``ax1`` (per-sample, from 0). The batch axis
    is ``a`` in all three; a contracted pair shares a letter; the output keeps x0's free axes,
    then x1's. Example: ``einsum_subscripts(2, [1], 1, [0])`` is ``('abc', 'ac', 'ab')``."""
    letters = iter(string.ascii_letters[1:])
    sub0 = [next(letters) for _ in range(r0)]
    sub1 = [next(letters) for _ in range(r1)]
    for a, b in zip(ax0, ax1):
        sub1[b] = sub0[a]  # contracted axes share a letter
    free = [c for i, c in enumerate(sub0) if i not in ax0] + [
        c for i, c in enumerate(sub1) if i not in ax1
    ]
    return "a" + "".join(sub0), "a" + "".join(sub1), "a" + "".join(free)


def _normalize(x: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sq = np.sum(x * x, axis=axes, keepdims=True)
    norm = np.sqrt(np.maximum(sq, x.dtype.type(NORM_EPS)))
    return x / norm, norm, sq > NORM_EPS


class ConcatCache(NamedTuple):
    axis: int  # the full-tensor concat axis
    sizes: list[int]  # each input's extent along it


class DotCache(NamedTuple):
    x0: np.ndarray
    x1: np.ndarray
    subscripts: tuple[str, str, str]  # einsum subscripts of x0, x1 and the output
    cosine: bool  # cos (inputs normalized first) rather than dot
    axes: tuple[list[int], list[int]]  # contracted per-sample axes of x0 and x1


def forward(
    mode: str, xs: list[np.ndarray], concat_axis: int, dot_axes: DotAxes, keep_cache: bool
) -> tuple[np.ndarray, Any]:
    """Merged output (always a fresh array: no branch output is modified) and a cache."""
    if mode in ("sum", "ave"):
        y = xs[0] + xs[1]
        for x in xs[2:]:
            y += x  # y is fresh, never a branch's own array
        if mode == "ave":
            y /= y.dtype.type(len(xs))
        return y, (len(xs) if keep_cache else None)
    if mode == "mul":
        y = xs[0] * xs[1]
        for x in xs[2:]:
            y *= x
        return y, (list(xs) if keep_cache else None)
    if mode == "max":
        y = np.maximum(xs[0], xs[1])
        for x in xs[2:]:
            np.maximum(y, x, out=y)
        return y, (list(xs) if keep_cache else None)
    if mode == "concat":
        axis = concat_axis_index(concat_axis, xs[0].shape[1:])
        sizes = [x.shape[axis] for x in xs]
        return np.concatenate(xs, axis=axis), (ConcatCache(axis, sizes) if keep_cache else None)
    x0, x1 = xs
    ax0, ax1 = dot_axes_pairs(dot_axes, x0.shape[1:], x1.shape[1:])
    out_shape = output_shape(mode, [x0.shape[1:], x1.shape[1:]], concat_axis, dot_axes)
    subs = einsum_subscripts(x0.ndim - 1, ax0, x1.ndim - 1, ax1)
    y = np.einsum(f"{subs[0]},{subs[1]}->{subs[2]}", x0, x1, optimize=True)
    if mode == "cos":  # dot / (|x0| |x1|), norms over the contracted axes, floored
        n0 = _free_norm(x0, subs[0], ax0)  # (batch, *free0)
        n1 = _free_norm(x1, subs[1], ax1)  # (batch, *free1)
        k0, k1 = n0.ndim - 1, n1.ndim - 1
        y /= n0.reshape(n0.shape + (1,) * k1)
        y /= n1.reshape(n1.shape[:1] + (1,) * k0 + n1.shape[1:])
    y = y.reshape((y.shape[0], *out_shape))  # a full contraction becomes (batch, 1)
    cache = DotCache(x0, x1, subs, mode == "cos", (ax0, ax1)) if keep_cache else None
    return y, cache


def norm_subscripts(sub: str, axes: list[int]) -> str:
    """The einsum of an input's squared norm over its contracted ``axes`` (cos):
    ``"{sub},{sub}->{free}"``, ``sub`` its subscripts from ``einsum_subscripts`` and ``free``
    the batch axis and the axes left uncontracted."""
    free = "a" + "".join(c for i, c in enumerate(sub[1:]) if i not in axes)
    return f"{sub},{sub}->{free}"


def _free_norm(x: np.ndarray, sub: str, axes: list[int]) -> np.ndarray:
    sq = np.einsum(norm_subscripts(sub, axes), x, x, optimize=True)
    return np.sqrt(np.maximum(sq, x.dtype.type(NORM_EPS)))


def backward(mode: str, dy: np.ndarray, cache: Any, n_inputs: int) -> list[np.ndarray]:
    """One gradient per input; masks do not change gradients (they only travel)."""
    if mode == "sum":
        return [dy.copy() for _ in range(n_inputs)]
    if mode == "ave":
        g = dy / dy.dtype.type(n_inputs)
        return [g.copy() for _ in range(n_inputs)]
    if mode == "mul":
        xs = cache
        grads = []
        for i in range(n_inputs):
            g = dy.copy()
            for j, x in enumerate(xs):
                if j != i:
                    g *= x  # product of the others, without dividing (zeros are fine)
            grads.append(g)
        return grads
    if mode == "max":
        xs = cache
        winner = np.argmax(np.stack(xs), axis=0)  # ties go to the first input
        return [np.where(winner == i, dy, dy.dtype.type(0)) for i in range(n_inputs)]
    if mode == "concat":
        return [part.copy() for part in np.split(dy, np.cumsum(cache.sizes)[:-1], axis=cache.axis)]
    x0, x1, is_cos = cache.x0, cache.x1, cache.cosine
    (s0, s1, so), (ax0, ax1) = cache.subscripts, cache.axes
    dy = dy.reshape((dy.shape[0], *_free_shape(x0, ax0, x1, ax1)))  # drop the (1,) of a scalar
    norms = None
    if is_cos:  # cos = dot(u0, u1) with u = x / max(|x|, eps): go back through u
        norms = (
            _normalize(x0, tuple(a + 1 for a in ax0)),
            _normalize(x1, tuple(b + 1 for b in ax1)),
        )
        x0, x1 = norms[0][0], norms[1][0]
    d0 = np.einsum(f"{so},{s1}->{s0}", dy, x1, optimize=True)
    d1 = np.einsum(f"{so},{s0}->{s1}", dy, x0, optimize=True)
    if norms is not None:
        d0 = _normalize_backward(d0, norms[0], tuple(a + 1 for a in ax0))
        d1 = _normalize_backward(d1, norms[1], tuple(b + 1 for b in ax1))
    return [d0, d1]


def _free_shape(x0: np.ndarray, ax0: list[int], x1: np.ndarray, ax1: list[int]) -> tuple:
    s0, s1 = x0.shape[1:], x1.shape[1:]
    return tuple(d for i, d in enumerate(s0) if i not in ax0) + tuple(
        d for i, d in enumerate(s1) if i not in ax1
    )


def _normalize_backward(du: np.ndarray, normed: tuple, axes: tuple[int, ...]) -> np.ndarray:
    u, norm, above = normed
    radial = np.sum(du * u, axis=axes, keepdims=True)
    return (du - np.where(above, u * radial, du.dtype.type(0))) / norm
