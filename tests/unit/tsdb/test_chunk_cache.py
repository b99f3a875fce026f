"""The per-database decoded-chunk cache: byte budget, LRU order, owners, read-only entries."""

from __future__ import annotations

import numpy as np
import pytest

from signalfire.tsdb.chunks.cache import ChunkCache
from signalfire.tsdb.chunks.chunk_file import KIND_VALUES, DecodedChunk


def _dec(n: int) -> DecodedChunk:
    return DecodedChunk(KIND_VALUES, np.array([n], np.int64), values=np.arange(n, dtype=np.float64))


def test_lru_within_budget():
    cache = ChunkCache(max_bytes=3 * (8 * 100 + 8))
    a = cache.new_owner()
    for c in range(3):
        cache.put(a, c, _dec(100))
    assert cache.get(a, 0) is not None  # 0 becomes the most recent
    cache.put(a, 3, _dec(100))
    assert cache.get(a, 1) is None and cache.get(a, 0) is not None
    assert cache.size_bytes <= cache.max_bytes
    assert cache.hits == 2 and cache.misses == 1


def test_entries_are_read_only_and_owners_are_separate():
    cache = ChunkCache()
    a, b = cache.new_owner(), cache.new_owner()
    dec = cache.put(a, 7, _dec(10))
    with pytest.raises(ValueError):
        dec.values[0] = 1.0  # type: ignore[index]
    assert cache.get(b, 7) is None
    cache.put(b, 7, _dec(5))
    cache.drop_owner(a)
    assert cache.get(a, 7) is None and cache.get(b, 7) is not None


def test_oversized_entry_and_resize():
    cache = ChunkCache(max_bytes=100)
    a = cache.new_owner()
    big = cache.put(a, 0, _dec(1000))
    assert big.values is not None and cache.get(a, 0) is None
    cache.put(a, 1, _dec(5))
    cache.resize(0)
    assert cache.size_bytes == 0 and cache.get(a, 1) is None


def test_two_databases_have_separate_caches(tmp_path):
    """A query in one database neither fills nor evicts the other's decoded chunks."""
    import signalfire

    dbs = [signalfire.open(tmp_path / name) for name in ("a", "b")]
    try:
        for db in dbs:
            ts = np.arange(0, 6 * 3_600_000, 15_000, dtype=np.int64)
            db.append({"__name__": "m"}, ts, np.ones(len(ts)))
            db.compact()
        caches = [db.tsdb.chunk_cache for db in dbs]
        assert caches[0] is not caches[1]
        before = [c.size_bytes for c in caches]
        dbs[0].select("m", 0, 3_600_000)  # the first hour: in a block, not in the head
        assert caches[0].size_bytes > before[0] and caches[1].size_bytes == before[1]
    finally:
        for db in dbs:
            db.close()
