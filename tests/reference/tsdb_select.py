"""Slow, obviously correct twin of a block querier's select: filter a Python list."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from signalfire.labels import Labels, Matcher

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
