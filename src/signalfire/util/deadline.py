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
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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


#: The deadline of the work running in this thread (or asyncio task). Numeric kernels take
#: plain arrays, so their long loops read it here instead of through every signature; the
#: layers above pass their Deadline explicitly. Scoped by :func:`active`, never process-wide.
_CURRENT: ContextVar[Deadline] = ContextVar("signalfire_deadline", default=NO_DEADLINE)


@contextmanager
def active(deadline: Deadline) -> Iterator[Deadline]:
    """Make ``deadline`` the one :func:`checkpoint` checks, for the ``with`` block."""
    token = _CURRENT.set(deadline)
    try:
        yield deadline
    finally:
        _CURRENT.reset(token)


def current() -> Deadline:
    """The deadline set by the innermost :func:`active` (:data:`NO_DEADLINE` outside)."""
    return _CURRENT.get()


def checkpoint(where: str = "expression evaluation") -> None:
    """Check the current deadline (see :meth:`Deadline.check`); for loops inside kernels."""
    _CURRENT.get().check(where)
