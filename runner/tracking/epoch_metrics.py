"""A fit's epochs logged to its MLflow run as they end (``tracking=mlflow``).

``EpochMetrics`` is an epoch callback (``runner.train.fit.EpochCallback``): after each epoch it
logs every history row not logged yet, each column a metric with step = epoch. So a run shows
its curves while it trains, and a fit that fails or is interrupted keeps the epochs it finished
(its folder has no history.csv then). A resumed fit's history starts with its parent's epochs:
they are logged before its first new epoch (``fit_started``), every row at its own epoch
number, so the MLflow run matches the run folder's history.csv, even when the fit fails in
that first epoch.

A store that fails mid-fit does not stop the training: the rows stay pending, and the end of
the run (``TrackedRun.finish``) logs them, or reports the failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("runner")


class EpochMetrics:
    """Called as ``callback(loop, record)`` after every epoch of a fit; see the module doc."""

    def __init__(self, client: Any, run_id: str) -> None:
        self.client, self.run_id = client, run_id
        self.logged: set[int] = set()  # epochs in MLflow
        self.keys: set[str] = set()  # their columns (result.json repeats the last row's)
        self.pending: list[dict[str, float]] = []  # finished epochs not logged yet
        self._warned = False

    def fit_started(self, loop: Any) -> None:
        """A resumed fit's restored epochs (its parent's), before its first new one."""
        if loop.state.history:
            self._log_history(loop, f"the parent's epochs 1-{len(loop.state.history)}")

    def __call__(self, loop: Any, record: dict[str, float]) -> None:
        self._log_history(loop, f"epoch {int(record['epoch'])}")

    def _log_history(self, loop: Any, what: str) -> None:
        """Every row of the fit's history not logged yet; a store's failure is a warning."""
        queued = self.logged | {int(r["epoch"]) for r in self.pending}
        self.pending += [r for r in loop.state.history if int(r["epoch"]) not in queued]
        try:
            self.flush()
        except Exception as exc:  # the store's trouble, not the fit's: retried at the end
            if not self._warned:
                log.warning(
                    "tracking: could not log %s to MLflow (%s: %s); the fit goes on and "
                    "the end of the run logs it again",
                    what,
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "",
                )
                self._warned = True

    def flush(self, more: Sequence[dict[str, float]] = ()) -> None:
        """Log the pending rows and those of MORE (history.csv's) not logged yet, in one batch."""
        from mlflow.entities import Metric

        seen = self.logged | {int(r["epoch"]) for r in self.pending}
        rows = self.pending + [r for r in more if int(r["epoch"]) not in seen]
        if not rows:
            return
        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), now, int(row["epoch"]))
            for row in rows
            for key, value in row.items()
            if key != "epoch"
        ]
        self.client.log_batch(self.run_id, metrics=metrics)
        self.logged.update(int(r["epoch"]) for r in rows)
        self.keys.update(k for r in rows for k in r)
        self.pending = []
