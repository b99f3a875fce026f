"""Slow, obviously correct twins of a querier's select (filter a Python list) and of the
store behind it (dictionaries written in order)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import numpy as np

from signalfire.labels import Labels, Matcher
from signalfire.storage import SeriesSet

Row = tuple[Labels, list[int], list[float]]


def matches(matchers: Sequence[Matcher], labels: Labels) -> bool:
    """Every matcher holds; a missing label reads as the empty string (Prometheus)."""
    d = dict(labels)
    return all(m.matches(d.get(m.name, "")) for m in matchers)


def select(
    rows: Sequence[Row],
    matchers: Sequence[Matcher],
    mint: int,
    maxt: int,
    deleted: Sequence[tuple[Labels, int, int]] = (),
) -> list[Row]:
    """Rows whose labels match, samples cut to [mint, maxt] minus deleted intervals; empty rows dropped."""
    out = []
    for labels, ts, vals in sorted(rows, key=lambda r: r[0]):
        if not matches(matchers, labels):
            continue
        keep_t, keep_v = [], []
        for t, v in zip(ts, vals):
            if not mint <= t <= maxt:
                continue
            if any(ls == labels and a <= t <= b for ls, a, b in deleted):
                continue
            keep_t.append(t)
            keep_v.append(v)
        if keep_t:
            out.append((labels, keep_t, keep_v))
    return out


def bits(values: Sequence[float]) -> list[int]:
    return np.array(values, np.float64).view(np.uint64).tolist()


class FirstWriteModel:
    """What a store holds after a sequence of writes, as plain dictionaries.

    A timestamp written twice for a series keeps its first write (value and start
    timestamp): the head refuses a second value for a timestamp it holds, and a merge of
    overlapping blocks and head keeps the copy written first. Every write is taken as
    accepted, so callers write only samples the store accepts (e.g. within the
    out-of-order window).
    """

    def __init__(self) -> None:
        self.series: dict[Labels, dict[int, tuple[float, int]]] = {}

    def write(
        self,
        labels: Sequence[Labels],
        ts: Sequence[int],
        values: Sequence[float],
        sts: Sequence[int] | None = None,
    ) -> None:
        """Samples ``(labels[k], ts[k], values[k], sts[k])`` in write order (st 0 = none)."""
        st_list = np.zeros(len(labels), np.int64).tolist() if sts is None else np.asarray(sts).tolist()
        vals = np.asarray(values, np.float64).tolist()
        for ls, t, v, s in zip(labels, np.asarray(ts).tolist(), vals, st_list):
            self.series.setdefault(ls, {}).setdefault(t, (v, s))

    def rows(self) -> list[Row]:
        """Every series with its samples in time order (sorted by labels), as :func:`select` takes them."""
        out = []
        for ls in sorted(self.series):
            pts = self.series[ls]
            ts = sorted(pts)
            out.append((ls, ts, [pts[t][0] for t in ts]))
        return out

    def expected(
        self, matchers: Sequence[Matcher], mint: int, maxt: int, *, with_st: bool = False
    ) -> dict[Labels, list[tuple[int, ...]]]:
        """What a select returns, as {labels: [(t, value bits[, st])]} (bits, so NaNs compare)."""
        out = {}
        for ls, ts, vs in self.rows():
            a, b = bisect.bisect_left(ts, mint), bisect.bisect_right(ts, maxt)
            if a < b and matches(matchers, ls):
                pts = self.series[ls]
                cols = [ts[a:b], bits(vs[a:b])] + ([[pts[t][1] for t in ts[a:b]]] if with_st else [])
                out[ls] = list(zip(*cols))
        return out

    def sums(self, times: Sequence[int], lookback: int) -> list[float | None]:
        """``sum`` at each of ``times`` of every series' newest sample in ``(t - lookback, t]``
        (None where no series has one), as an instant selector inside ``sum`` sees them."""
        rows = self.rows()
        out: list[float | None] = []
        for t in times:
            vals = []
            for _, ts, vs in rows:
                k = bisect.bisect_right(ts, t) - 1  # the newest sample at or before t
                if k >= 0 and ts[k] > t - lookback:
                    vals.append(vs[k])
            out.append(math.fsum(vals) if vals else None)
        return out


def as_expected(ss: SeriesSet, *, with_st: bool = False) -> dict[Labels, list[tuple[int, ...]]]:
    """A SeriesSet in :meth:`FirstWriteModel.expected`'s shape (a missing ``st`` reads as 0s)."""
    out = {}
    for ls, a, b in zip(ss.labels, ss.offsets[:-1].tolist(), ss.offsets[1:].tolist()):
        cols = [ss.ts[a:b].tolist(), bits(ss.values[a:b])]
        if with_st:
            cols.append(ss.st[a:b].tolist() if ss.st is not None else [0] * (b - a))
        out[ls] = list(zip(*cols))
    return out
