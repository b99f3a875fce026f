"""Query limits: ``--query.max-samples`` and ``--query.timeout``.

Hitting a limit raises the Prometheus error (:class:`TooManySamplesError`,
:class:`QueryTimeoutError`); the evaluator checks between nodes, never per sample.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from signalfire.errors import QueryCanceledError, QueryTimeoutError, TooManySamplesError


@dataclass(slots=True)
class QueryLimits:
    """Per-query budget: samples held in memory and a wall-clock deadline.

    ``current`` approximates Prometheus's ``currentSamples``: the points loaded by
    selectors (present cells of instant selectors, window contents of range selectors)
    that the query holds at once. ``peak`` is reported in statistics.
    """

    max_samples: int = 50_000_000
    timeout_s: float = 120.0
    started: float = field(default_factory=time.monotonic)
    current: int = 0
    peak: int = 0
    total: int = 0
    #: Set from another thread to stop the query at the next node boundary.
    cancel: threading.Event | None = None

    def add_samples(self, n: int) -> None:
        """Account ``n`` more samples; raise when over ``max_samples``."""
        self.current += n
        self.total += n
        self.peak = max(self.peak, self.current)
        if self.max_samples > 0 and self.current > self.max_samples:
            raise TooManySamplesError()

    def check_peak(self, n: int) -> None:
        """Raise when a single intermediate value of ``n`` points would exceed the limit."""
        self.peak = max(self.peak, n)
        if self.max_samples > 0 and n > self.max_samples:
            raise TooManySamplesError()

    def check_deadline(self) -> None:
        """Raise :class:`QueryTimeoutError` once the query has run for ``timeout_s``, and
        :class:`QueryCanceledError` once ``cancel`` is set."""
        if self.cancel is not None and self.cancel.is_set():
            raise QueryCanceledError("query was canceled in expression evaluation")
        if self.timeout_s > 0 and time.monotonic() - self.started > self.timeout_s:
            raise QueryTimeoutError("query timed out in expression evaluation")
