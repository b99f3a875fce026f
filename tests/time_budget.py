"""Run a call under a CPU-time budget: how long a parse took, or that it ran too long.

Shared by the linear-time tests and the fuzzers. CPU time (``ITIMER_PROF``), not wall
time, so that other processes on a busy machine do not count; the alarm interrupts a
runaway call (``re`` checks for signals while it matches), so an exponential parse fails
its test instead of hanging it. Outside the main thread no alarm can be set, and the call
runs to its end.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

OVER = float("inf")


class _Overrun(BaseException):
    """Not an Exception, so that no ``except Exception`` in the code under test swallows it."""


def _alarm(_signum: int, _frame: Any) -> None:
    raise _Overrun


def cpu_seconds(
    fn: Callable[[], object], limit_s: float, *, expected: tuple[type[BaseException], ...] = ()
) -> float:
    """CPU seconds ``fn()`` took, or ``OVER`` when it ran past ``limit_s``. Exceptions in
    ``expected`` count as its end; others propagate. (The alarm handler stays installed
    after the first call: it does nothing unless this function's timer fires, and setting
    it once keeps the cost per call to two ``setitimer`` calls, for fuzzers that time
    every input.)"""
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGPROF) is not _alarm:
        signal.signal(signal.SIGPROF, _alarm)
    started = time.process_time()
    try:
        if main:
            signal.setitimer(signal.ITIMER_PROF, limit_s)
        fn()
    except _Overrun:
        return OVER
    except expected:
        pass
    finally:
        if main:
            signal.setitimer(signal.ITIMER_PROF, 0)
    return time.process_time() - started
