"""The cells of a range vector, and how range kernels return results for them.

Every range kernel (:mod:`range_functions`, :mod:`counter_functions`,
:mod:`trend_functions`) takes a :class:`RangeWindows` (all series × all steps) and
returns ``(values, present)``, both ``[S, T]``. A cell is present when Prometheus would
emit a sample for that series at that step. The helpers here flatten the cells, pick
the non-empty ones and scatter per-cell results back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from signalfire._types import F64, I64, Bool
from signalfire.promql.values import RangeWindows

Result = tuple[F64, Bool]
_F = TypeVar("_F", bound=Callable[..., Any])


def quiet(fn: _F) -> _F:
    """Run a kernel with floating-point warnings off: Inf and NaN are PromQL values."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def flat_bounds(w: RangeWindows) -> tuple[I64, I64]:
    """Every cell's window bounds, flattened in (series, step) order."""
    return w.lo.ravel(), w.hi.ravel()


def grid_shape(w: RangeWindows) -> tuple[int, int]:
    """``(S, T)``: series by steps, the shape of every result."""
    return (w.num_series, len(w.eval_ts))


def pack(w: RangeWindows, cells: I64, vals: F64, cells_sorted: bool = True) -> Result:
    """Scatter per-cell results for ``cells`` (unique flat positions) into ``[S, T]`` arrays."""
    S, T = grid_shape(w)
    if cells_sorted and len(cells) == S * T:
        # Every cell, in order: the values are the matrix already.
        return np.asarray(vals, np.float64).reshape(S, T), np.ones((S, T), np.bool_)
    out = np.zeros(S * T, np.float64)
    present = np.zeros(S * T, np.bool_)
    out[cells] = vals
    present[cells] = True
    return out.reshape(S, T), present.reshape(S, T)


def nonempty(w: RangeWindows, min_len: int = 1) -> tuple[I64, I64, I64]:
    """Flat positions of the cells whose window holds at least ``min_len`` samples, and
    their bounds. Dense data (the usual case) skips the gathers."""
    lo, hi = flat_bounds(w)
    long_enough = hi - lo >= min_len
    if long_enough.all():
        return np.arange(len(lo), dtype=np.int64), lo, hi
    cells = np.flatnonzero(long_enough)
    return cells, lo[cells], hi[cells]


def pack_parts(w: RangeWindows, cells: list[I64], vals: list[F64]) -> Result:
    """:func:`pack` of results computed in several parts (cells in any order)."""
    if not cells:
        return pack(w, np.empty(0, np.int64), np.empty(0))
    return pack(w, np.concatenate(cells), np.concatenate(vals), cells_sorted=False)
