"""``expect:`` checks: compare what a run computed with numbers written in the config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from runner.output.output_stats import output_stats


@dataclass(frozen=True)
class Check:
    name: str  # "dense.values"
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


def run_checks(
    expect: dict[str, Any],
    values: dict[str, np.ndarray],
    masks: dict[str, np.ndarray],
    penalties: dict[str, float],
) -> list[Check]:
    checks: list[Check] = []
    for name, spec in expect.items():
        y = values[name]
        if spec.shape is not None:
            checks.append(
                Check(
                    f"{name}.shape",
                    tuple(y.shape) == tuple(spec.shape),
                    f"expected {tuple(spec.shape)}, got {y.shape}",
                )
            )
        if spec.values is not None:
            checks.append(_close(f"{name}.values", y, _as(spec.values, y), spec.rtol, spec.atol))
        if spec.mask is not None:
            got = masks.get(name)
            want = np.asarray(spec.mask, dtype=bool)
            ok = got is not None and got.shape == want.shape and bool((got == want).all())
            shown = None if got is None else got.astype(int).tolist()
            checks.append(
                Check(f"{name}.mask", ok, f"expected {want.astype(int).tolist()}, got {shown}")
            )
        if spec.one_of is not None:
            choices = [_as(c, y) for c in spec.one_of]
            hit = np.zeros(y.shape, dtype=bool)
            for c in choices:
                if c.shape != y.shape:
                    checks.append(
                        Check(
                            f"{name}.one_of",
                            False,
                            f"choice shape {c.shape} differs from output shape {y.shape}",
                        )
                    )
                    break
                hit |= np.isclose(y, c, rtol=spec.rtol, atol=spec.atol)
            else:
                checks.append(
                    Check(
                        f"{name}.one_of",
                        bool(hit.all()),
                        f"{int((~hit).sum())} of {y.size} elements match no choice",
                    )
                )
        if spec.mean is not None or spec.zero_fraction is not None:
            stats = output_stats(y)  # one windowed pass for both
            if spec.mean is not None:
                checks.append(_approx(f"{name}.mean", stats.mean, spec.mean))
            if spec.zero_fraction is not None:
                checks.append(
                    _approx(f"{name}.zero_fraction", stats.zero_fraction, spec.zero_fraction)
                )
        if spec.penalty is not None:
            checks.append(
                _approx(f"{name}.penalty", penalties.get(f"{name}/activity", 0.0), spec.penalty)
            )
    return checks


def _as(values: Any, like: np.ndarray) -> np.ndarray:
    """Expected numbers rounded to the output's dtype: printed float32 values compare exactly."""
    return np.asarray(values, dtype=np.float64).astype(like.dtype)


def _close(name: str, got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> Check:
    if got.shape != want.shape:
        return Check(name, False, f"expected shape {want.shape}, got {got.shape}")
    ok = bool(np.allclose(got, want, rtol=rtol, atol=atol))
    worst = float(np.max(np.abs(got.astype(np.float64) - want))) if got.size else 0.0
    detail = f"max abs difference {worst:.3g} (rtol={rtol:g}, atol={atol:g})"
    if not ok and got.size <= 20:
        detail += f"; expected {want.tolist()}, got {got.tolist()}"
    return Check(name, ok, detail)


def _approx(name: str, got: float, want: Any) -> Check:
    ok = abs(got - want.value) <= want.atol + want.rtol * abs(want.value)
    return Check(
        name, ok, f"expected {want.value:g} (atol={want.atol:g}, rtol={want.rtol:g}), got {got:.9g}"
    )
