"""The ragged SeriesSet: many series' samples in three flat arrays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from signalfire._types import F64, I64
from signalfire.labels import Labels
from signalfire.storage.annotations import Annotations


@dataclass(frozen=True, slots=True)
class SeriesSet:
    """S series sorted by labels, N samples in all.

    Series ``i`` owns ``ts[offsets[i]:offsets[i+1]]`` and the same slice of ``values``;
    within a series timestamps strictly increase. ``st`` holds start timestamps
    (``_created`` / Prometheus's ST) per sample when the store has them, else None;
    0 in ``st`` means "no start timestamp for this sample".

    Arrays may be read-only views into mmap'd blocks, valid until the querier that
    produced them is closed; copy what you keep.
    """

    labels: Sequence[Labels]
    offsets: I64  # int64[S+1]
    ts: I64  # int64[N]
    values: F64  # float64[N]
    warnings: Annotations = field(default_factory=Annotations)
    st: I64 | None = None  # int64[N] or None

    def __post_init__(self) -> None:
        # O(1) checks on every SeriesSet made: values paired with the wrong timestamps
        # must fail here, loudly, not as a wrong answer or an IndexError far away.
        # validate() adds the O(N) and O(S) ones.
        n = len(self.ts)
        off = self.offsets
        if len(off) != len(self.labels) + 1 or off[0] != 0 or off[-1] != n or len(self.values) != n:
            raise AssertionError(
                f"BUG: SeriesSet of {len(self.labels)} series with {len(off)} offsets "
                f"(first {off[0] if len(off) else None}, last {off[-1] if len(off) else None}), "
                f"{n} timestamps and {len(self.values)} values"
            )
        if self.st is not None and len(self.st) != n:
            raise AssertionError(f"BUG: SeriesSet with {n} timestamps and {len(self.st)} start timestamps")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_samples(self) -> int:
        return int(self.offsets[-1]) if len(self.offsets) else 0

    def series(self, i: int) -> tuple[Labels, I64, F64]:
        """Labels, timestamps and values of series ``i`` (views)."""
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.labels[i], self.ts[a:b], self.values[a:b]

    def validate(self) -> None:
        """Check the invariants; raises AssertionError("BUG: ...") when one is broken."""
        S = len(self.labels)
        if self.offsets.shape != (S + 1,) or (S + 1 and self.offsets[0] != 0):
            raise AssertionError("BUG: offsets must have S+1 entries starting at 0")
        if np.any(np.diff(self.offsets) < 0):
            raise AssertionError("BUG: offsets must not decrease")
        if len(self.ts) != self.num_samples or len(self.values) != self.num_samples:
            raise AssertionError("BUG: ts/values length must equal offsets[-1]")
        if any(self.labels[i] >= self.labels[i + 1] for i in range(S - 1)):
            raise AssertionError("BUG: series must be sorted by labels and unique")


def empty_series_set() -> SeriesSet:
    return SeriesSet([], np.zeros(1, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))


def series_set_from_lists(labels: Sequence[Labels], ts: Sequence[I64], values: Sequence[F64]) -> SeriesSet:
    """Build a SeriesSet from per-series arrays (sorts the series by labels)."""
    order = sorted(range(len(labels)), key=lambda i: labels[i])
    lens = np.array([len(ts[i]) for i in order], dtype=np.int64)
    offsets = np.zeros(len(order) + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    cat_ts = np.concatenate([np.asarray(ts[i], np.int64) for i in order]) if order else np.empty(0, np.int64)
    cat_v = (
        np.concatenate([np.asarray(values[i], np.float64) for i in order])
        if order
        else np.empty(0, np.float64)
    )
    return SeriesSet([labels[i] for i in order], offsets, cat_ts, cat_v)
