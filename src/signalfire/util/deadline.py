"""Deadlines and cancellation that travel with a piece of work through every layer.

A query's ``--query.timeout`` and a request to kill it must reach the engine's kernels and
the storage selects below it, so one small object is passed down instead of a timeout in
seconds at each layer. Checking is cheap (a monotonic clock read and an event test) and
done at batch boundaries, never per sample.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from signalfire.errors import QueryCanceledError, QueryTimeoutError


@dataclass(frozen=True, slots=True)
class Deadline:
    """A monotonic instant after which work stops, and an optional cancel event.

    ``at`` is a :func:`time.monotonic` value (``inf``: no time limit). ``cancel`` is set from
    another thread to stop the work at its next check. Thread-safe: it is only read.
    """

    at: float = math.inf
    cancel: threading.Event | None = None

    @classmethod
    def after(cls, seconds: float, cancel: threading.Event | None = None) -> Deadline:
        """A deadline ``seconds`` from now; ``seconds <= 0`` means no time limit."""
        at = time.monotonic() + seconds if seconds > 0 else math.inf
        return cls(at, cancel)

    def remaining(self) -> float:
        """Seconds left (``inf`` without a time limit; negative once passed)."""
        return self.at - time.monotonic() if self.at != math.inf else math.inf

    def expired(self) -> bool:
        return (self.cancel is not None and self.cancel.is_set()) or (
            self.at != math.inf and time.monotonic() > self.at
        )

    def check(self, where: str = "expression evaluation") -> None:
        """Raise :class:`QueryCanceledError` once canceled, :class:`QueryTimeoutError` once
        the instant has passed; ``where`` names the stage, as Prometheus's messages do."""
        if self.cancel is not None and self.cancel.is_set():
            raise QueryCanceledError(f"query was canceled in {where}")
        if self.at != math.inf and time.monotonic() > self.at:
            raise QueryTimeoutError(f"query timed out in {where}")


#: The deadline of work that has none.
NO_DEADLINE = Deadline()
