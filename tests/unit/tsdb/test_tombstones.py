"""Tombstones: interval merging, masks, the file (tsdb/tombstones.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from signalfire.errors import CorruptionError
from signalfire.tsdb.tombstones import Tombstones, merge_intervals, read_tombstones, write_tombstones


@pytest.mark.parametrize(
    ("given", "want"),
    [
        ([], []),
        ([(5, 9), (1, 3)], [(1, 3), (5, 9)]),
        ([(1, 3), (4, 9)], [(1, 9)]),  # touching
        ([(1, 10), (2, 3)], [(1, 10)]),  # contained
        ([(1, 5), (3, 8), (20, 30)], [(1, 8), (20, 30)]),
    ],
)
def test_merge_intervals(given: list[tuple[int, int]], want: list[tuple[int, int]]) -> None:
    assert merge_intervals(given) == want


def test_add_and_mask() -> None:
    t = Tombstones()
    t.add(np.array([1, 3]), 10, 20)
    t.add(np.array([3]), 21, 25)
    t.add(np.array([4]), 9, 1)  # empty interval is ignored
    assert t.get(3) == [(10, 25)] and t.get(1) == [(10, 20)] and t.get(4) == []
    assert len(t) == 2 and t.refs().tolist() == [1, 3]
    # Ragged set of block series 0, 1, 3.
    refs = np.array([0, 1, 3])
    offsets = np.array([0, 3, 6, 9])
    ts = np.array([10, 15, 30, 5, 10, 20, 20, 25, 26])
    mask = t.deleted_mask(refs, offsets, ts)
    assert mask.tolist() == [False, False, False, False, True, True, True, True, False]


def test_file_roundtrip_and_missing(tmp_path: Path) -> None:
    assert not read_tombstones(tmp_path)
    t = Tombstones({7: [(1, 2), (5, 6)], 2: [(-(2**63), 2**63 - 1)]})
    size = write_tombstones(tmp_path, t)
    assert size == (tmp_path / "tombstones").stat().st_size
    assert read_tombstones(tmp_path) == t


@pytest.mark.parametrize("cut", [0, 5, 19, 30])
def test_damaged_file(tmp_path: Path, cut: int) -> None:
    write_tombstones(tmp_path, Tombstones({1: [(1, 2)]}))
    path = tmp_path / "tombstones"
    data = path.read_bytes()
    path.write_bytes(data[:cut] + data[cut + 1 :] if cut < len(data) - 4 else data[:cut])
    with pytest.raises(CorruptionError) as err:
        read_tombstones(tmp_path)
    assert err.value.path == str(path)
