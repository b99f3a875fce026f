"""Query statistics (``stats=true|all`` in the HTTP API) and the query log line.

Shapes follow Prometheus's ``util/stats`` JSON: ``timings`` in seconds and
``samples`` with ``totalQueryableSamples`` and ``peakSamples``; ``stats=all`` adds
``totalQueryableSamplesPerStep`` as ``[[t_seconds, n], ...]``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from signalfire._types import I64


@dataclass(slots=True)
class QueryStats:
    """What one query cost. Times in seconds; per-step counts aligned with ``timestamps``."""

    timestamps: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    samples_per_step: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    peak_samples: int = 0
    #: Samples loaded at times that are not query steps (subquery inner evaluations).
    other_samples: int = 0
    parse_s: float = 0.0
    prepare_s: float = 0.0
    eval_s: float = 0.0
    total_s: float = 0.0
    _t0: float = field(default_factory=time.perf_counter)

    def add_step_samples(self, counts: I64) -> None:
        """Add loaded-sample counts per step (int64[T])."""
        if self.samples_per_step.shape != counts.shape:
            self.samples_per_step = np.zeros(counts.shape, np.int64)
        self.samples_per_step = self.samples_per_step + counts

    @property
    def total_samples(self) -> int:
        return int(self.samples_per_step.sum()) + self.other_samples

    def to_json(self, per_step: bool = False) -> dict[str, Any]:
        """Prometheus's ``stats`` object for the API response."""
        samples: dict[str, Any] = {
            "totalQueryableSamples": self.total_samples,
            "peakSamples": int(self.peak_samples),
        }
        if per_step:
            samples["totalQueryableSamplesPerStep"] = [
                [_seconds(int(t)), int(n)]
                for t, n in zip(self.timestamps.tolist(), self.samples_per_step.tolist())
            ]
        return {
            "timings": {
                "evalTotalTime": self.total_s,
                "resultSortTime": 0.0,
                "queryPreparationTime": self.prepare_s,
                "innerEvalTime": self.eval_s,
                "execQueueTime": 0.0,
                "execTotalTime": self.total_s,
            },
            "samples": samples,
        }


def _seconds(t_ms: int) -> float | int:
    return t_ms // 1000 if t_ms % 1000 == 0 else t_ms / 1000.0
