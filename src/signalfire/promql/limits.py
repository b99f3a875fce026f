"""Query limits: ``--query.max-samples``, ``--query.timeout``, steps per query.

Hitting a limit raises the Prometheus error (:class:`TooManySamplesError`,
:class:`QueryTimeoutError`, :class:`QueryCanceledError`). Sizes are checked *before* the
arrays they describe are allocated: a refused query must not first take the memory the
limit exists to protect. The evaluator checks the deadline between nodes and kernels
inside their long loops, never per sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from signalfire.errors import BadDataError, TooManySamplesError, TooManyStepsError
from signalfire.util.deadline import NO_DEADLINE, Deadline

#: Prometheus's HTTP API refuses range queries with more points per series than this.
MAX_POINTS_PER_SERIES = 11_000

#: Step matrices are dense ``[S, T]`` arrays where Prometheus holds only present points, so
#: a node may hold this many cells per ``max_samples`` before it is refused unallocated.
DENSE_CELLS_PER_SAMPLE = 4


def check_resolution(start_ms: int, end_ms: int, step_ms: int) -> None:
    """Refuse a range query as Prometheus's HTTP API does, with its messages, in its order.

    For the HTTP API and :meth:`signalfire.Database.query_range`: more than
    :data:`MAX_POINTS_PER_SERIES` points per series (``(end - start) / step``) is refused.
    The engine has its own, larger, bound (``EngineOptions.max_steps``).
    """
    if end_ms < start_ms:
        raise BadDataError("end timestamp must not be before start time")
    if step_ms <= 0:
        raise BadDataError(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
        )
    if (end_ms - start_ms) // step_ms > MAX_POINTS_PER_SERIES:
        raise BadDataError(
            "exceeded maximum resolution of 11,000 points per timeseries. "
            "Try decreasing the query resolution (?step=XX)"
        )


@dataclass(slots=True)
class QueryLimits:
    """Per-query budget: samples held in memory, steps, and a deadline.

    ``current`` approximates Prometheus's ``currentSamples``: the points loaded by
    selectors (present cells of instant selectors, window contents of range selectors)
    that the query holds at once. ``peak`` is reported in statistics. ``deadline``
    carries the timeout and the cancel event (see :mod:`signalfire.util.deadline`).
    """

    max_samples: int = 50_000_000
    max_steps: int = 11_000_000
    deadline: Deadline = field(default=NO_DEADLINE)
    current: int = 0
    peak: int = 0
    total: int = 0

    def add_samples(self, n: int) -> None:
        """Account ``n`` more samples; raise when over ``max_samples``."""
        self.current += n
        self.total += n
        self.peak = max(self.peak, self.current)
        if self.max_samples > 0 and self.current > self.max_samples:
            raise TooManySamplesError()

    def reserve(self, n: int) -> None:
        """Raise before loading ``n`` more samples would go over ``max_samples`` (nothing
        is accounted: :meth:`add_samples` does that once the samples are there)."""
        if self.max_samples > 0 and self.current + n > self.max_samples:
            raise TooManySamplesError()

    def check_peak(self, n: int) -> None:
        """Raise when a single intermediate value of ``n`` points would exceed the limit."""
        self.peak = max(self.peak, n)
        if self.max_samples > 0 and n > self.max_samples:
            raise TooManySamplesError()

    def check_cells(self, n_series: int, n_steps: int) -> None:
        """Raise before a dense ``[n_series, n_steps]`` value is allocated when it would hold
        more than :data:`DENSE_CELLS_PER_SAMPLE` cells per allowed sample."""
        if self.max_samples > 0 and n_series * n_steps > DENSE_CELLS_PER_SAMPLE * self.max_samples:
            raise TooManySamplesError()

    def check_steps(self, n_steps: int, what: str = "query") -> None:
        """Raise :class:`TooManyStepsError` before ``n_steps`` evaluation times are made."""
        if self.max_steps > 0 and n_steps > self.max_steps:
            raise TooManyStepsError(
                f"{what} would be evaluated at {n_steps} steps, more than the engine's limit of "
                f"{self.max_steps} (max_steps); use a larger step or a shorter range"
            )

    def check_deadline(self) -> None:
        """Raise :class:`QueryTimeoutError` once the deadline has passed, and
        :class:`QueryCanceledError` once its cancel event is set."""
        self.deadline.check()
