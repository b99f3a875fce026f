"""Conversions between the times users give and int64 milliseconds used inside."""

from __future__ import annotations

import datetime as _dt
import math

import numpy as np

TimeLike = float | int | _dt.datetime | np.datetime64
DurationLike = float | int | _dt.timedelta | np.timedelta64


def to_ms(t: TimeLike) -> int:
    """Seconds since the epoch (int or float, ms precision), a datetime or a datetime64 -> ms.

    Naive datetimes are taken as UTC, as Prometheus's API takes RFC 3339 times.
    """
    if isinstance(t, np.datetime64):
        return int(t.astype("datetime64[ms]").astype(np.int64))
    if isinstance(t, _dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.UTC)
        return round(t.timestamp() * 1000)
    if hasattr(t, "to_datetime64"):  # pandas.Timestamp
        return to_ms(t.to_datetime64())
    f = float(t)
    if not math.isfinite(f):
        raise ValueError(f"cannot use {t!r} as a time")
    return round(f * 1000)


def duration_to_ms(d: DurationLike) -> int:
    """Seconds (int or float), a timedelta or a timedelta64 -> ms."""
    if isinstance(d, np.timedelta64):
        return int(d.astype("timedelta64[ms]").astype(np.int64))
    if isinstance(d, _dt.timedelta):
        return round(d.total_seconds() * 1000)
    return round(float(d) * 1000)
