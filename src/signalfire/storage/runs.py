"""Concatenating runs (contiguous slices) of several arrays: the copy step of every read.

A read assembles its output from *runs*: ``length[r]`` elements of ``arrays[which[r]]``
starting at ``start[r]``, in run order. Merging sources, cutting chunks to a time range
and gathering a block's pieces are all this one operation.

Two strategies, picked by the mean run length, because allocation and page faults of
large temporaries dominate here:

* long runs (the usual case: a series' samples of one block or of the head): a view
  per run and one ``np.concatenate`` - one pass over the output, no N-sized index;
* short runs (many series with a few samples each): the arrays are concatenated once
  and gathered with one ragged index, so no Python work per run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from signalfire._types import I64

#: Mean run length from which a Python list of views beats a ragged fancy index
#: (a view costs ~0.2 µs; an indexed element ~5 ns including the index itself).
VIEW_RUN_MIN = 48


def ragged_arange(starts: I64, lens: I64) -> I64:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lens)])`` without the loop."""
    lens = np.asarray(lens, np.int64)
    total = int(lens.sum())
    if total == 0:
        return np.empty(0, np.int64)
    shift = np.asarray(starts, np.int64) - (np.cumsum(lens) - lens)
    out: I64 = np.repeat(shift, lens)
    out += np.arange(total, dtype=np.int64)
    return out


def concat_runs(
    arrays: Sequence[np.ndarray], which: I64, start: I64, length: I64, dtype: type | np.dtype
) -> np.ndarray:
    """The runs ``arrays[which[r]][start[r]:start[r] + length[r]]`` concatenated in order.

    Always a fresh array of ``dtype`` (never a view of an input), so it stays valid when
    the inputs go (mmap views, cached chunks).
    """
    n_runs = len(length)
    total = int(np.sum(length)) if n_runs else 0
    if total == 0:
        return np.empty(0, dtype)
    if n_runs == 1:
        s = int(start[0])
        return np.array(arrays[int(which[0])][s : s + total], dtype=dtype)
    if total >= VIEW_RUN_MIN * n_runs:
        # A loop over runs, each one slice view; the copy itself is one C pass.
        ends = (start + length).tolist()
        views = [arrays[w][a:b] for w, a, b in zip(which.tolist(), start.tolist(), ends)]
        return np.concatenate(views).astype(dtype, copy=False)
    if len(arrays) == 1:
        flat, base = np.asarray(arrays[0]), np.zeros(1, np.int64)
    else:
        flat = np.concatenate([np.asarray(a, dtype) for a in arrays])
        base = np.zeros(len(arrays), np.int64)
        np.cumsum([len(a) for a in arrays[:-1]], out=base[1:])
    idx = ragged_arange(base[which] + start, length)
    return np.asarray(flat[idx], dtype)
