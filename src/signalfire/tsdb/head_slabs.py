"""Slabs of the head's pool: allocation, growth, repacking, sorting, searching.

Every series owns a contiguous slab ``[start, start + cap)`` of the pooled columns
(``pool_ts``, ``pool_v`` and, once a start timestamp was seen, ``pool_st``); ``n[ref]``
says how many are filled. This mixin holds the whole-array operations on them; ``Head``
(``head.py``) owns the state and decides when to use them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from signalfire._types import I64, Bool
from signalfire.util.ragged import ragged_arange, segment_ids

_MIN_CAP = 16


def round_cap(need: I64) -> I64:
    """Next power of two at or above ``need`` (at least _MIN_CAP): amortised O(1) growth."""
    x = np.maximum(need, _MIN_CAP).astype(np.float64)
    return np.left_shift(np.int64(1), np.ceil(np.log2(x)).astype(np.int64))


class SlabPool:
    """Slab operations over the pooled columns (mixed into ``Head``)."""

    pool_ts: I64
    pool_v: np.ndarray
    pool_st: I64 | None
    pool_end: int
    wasted: int
    start: I64
    cap: I64
    n: I64
    nc: I64
    generation: int
    _slab_cap: int
    _labels: Sequence[object]  # by ref (only its length is used here)

    def _reserve_pool(self, extra: int) -> bool:
        """Make room for ``extra`` more pooled samples; True when it repacked (which
        moves and resizes slabs, so the caller must recompute what it needs)."""
        if self.pool_end + extra <= len(self.pool_ts):
            return False
        if self.wasted > self.pool_end // 2:
            self.repack()
            return True
        size = max(len(self.pool_ts) * 3 // 2, self.pool_end + extra)  # 1.5x: less idle memory
        for name in ("pool_ts", "pool_v", "pool_st"):
            arr = getattr(self, name)
            if arr is None:
                continue
            grown = np.zeros(size, arr.dtype) if name == "pool_st" else np.empty(size, arr.dtype)
            grown[: self.pool_end] = arr[: self.pool_end]
            setattr(self, name, grown)
        return False

    def _columns(self) -> list[np.ndarray]:
        return [a for a in (self.pool_ts, self.pool_v, self.pool_st) if a is not None]

    def repack(self) -> None:
        """Copy every live slab into a fresh, dense pool (drops abandoned slabs).

        A series that was cut keeps its usual slab size even while empty, so it does not
        grow through small slabs again; a series without samples gives its slab up."""
        refs = np.flatnonzero(self.cap[: len(self._labels)] > 0)
        n = self.n[refs]
        active = (n > 0) | (self.nc[refs] > 0)
        caps = np.maximum(round_cap(n + 1), np.minimum(self.cap[refs], self._slab_cap))
        caps[~active] = 0
        new_start = np.cumsum(caps) - caps
        src = ragged_arange(self.start[refs], n)
        dst = ragged_arange(new_start, n)
        size = max(int(caps.sum()) * 5 // 4, 1 << 16)
        for name in ("pool_ts", "pool_v", "pool_st"):
            arr = getattr(self, name)
            if arr is None:
                continue
            fresh = np.zeros(size, arr.dtype)
            fresh[dst] = arr[src]
            setattr(self, name, fresh)
        self.start[refs] = new_start
        self.cap[refs] = caps
        self.pool_end = int(caps.sum())
        self.wasted = 0

    def _ensure_room(self, refs: I64, counts: I64) -> None:
        """Give every series in ``refs`` (unique) room for ``counts`` more samples."""
        while True:
            need = self.n[refs] + counts
            grow = need > self.cap[refs]
            if not grow.any():
                return
            new_cap = round_cap(need[grow])
            if not self._reserve_pool(int(new_cap.sum())):
                break  # a repack tightened slabs: judge again (at most once, waste is 0 now)
        g = refs[grow]
        new_start = self.pool_end + np.cumsum(new_cap) - new_cap
        old_n = self.n[g]
        if old_n.any():
            src = ragged_arange(self.start[g], old_n)
            dst = ragged_arange(new_start, old_n)
            for col in self._columns():
                col[dst] = col[src]
        self.wasted += int(self.cap[g].sum())
        self.start[g] = new_start
        self.cap[g] = new_cap
        self.pool_end += int(new_cap.sum())

    def _resort(self, refs: I64) -> None:
        """Sort the slabs of ``refs`` by time and drop repeated timestamps (first one wins)."""
        lens = self.n[refs]
        idx = ragged_arange(self.start[refs], lens)
        owner = segment_ids(lens)
        t = self.pool_ts[idx]
        order = np.lexsort((t, owner))  # stable: stored samples precede new ones at equal t
        t, owner = t[order], owner[order]
        keep = np.ones(len(t), np.bool_)
        keep[1:] = (t[1:] != t[:-1]) | (owner[1:] != owner[:-1])
        new_lens = np.bincount(owner[keep], minlength=len(refs)).astype(np.int64)
        dst = ragged_arange(self.start[refs], new_lens)
        for col in self._columns():
            col[dst] = col[idx[order[keep]]]
        self.n[refs] = new_lens

    def _rewrite(self, refs: I64, keep: Bool, idx: I64, lens: I64) -> None:
        """Keep only the samples ``keep`` of ``refs`` (gathered at ``idx``), compacting slabs."""
        owner = segment_ids(lens)
        new_lens = np.bincount(owner[keep], minlength=len(refs)).astype(np.int64)
        dst = ragged_arange(self.start[refs], new_lens)
        for col in self._columns():
            col[dst] = col[idx[keep]]
        self.n[refs] = new_lens
        self.generation += 1

    def slab_search(self, refs: I64, x: I64, right: bool = False) -> I64:
        """Per-element ``np.searchsorted(slab(refs[i]), x[i], side)``, vectorised over i.

        A binary search over all slabs at once: ~log2(longest slab) whole-array steps.
        """
        start = self.start[refs]
        lo = np.zeros(len(refs), np.int64)
        hi = self.n[refs].copy()
        while True:
            active = lo < hi
            if not active.any():
                return lo
            mid = (lo + hi) >> 1
            vals = self.pool_ts[np.where(active, start + mid, 0)]
            go = active & ((vals <= x) if right else (vals < x))
            lo = np.where(go, mid + 1, lo)
            hi = np.where(active & ~go, mid, hi)
