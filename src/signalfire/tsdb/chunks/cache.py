"""An LRU of decoded chunks, bounded in bytes, shared by every block of one database.

Decoding costs tens of ns per sample; a dashboard re-reads the same recent hours every
few seconds. One cache per database (rather than one per block) lets the budget go
where the reads are, like the page cache under Prometheus's mmap'd chunks. It is not
process-wide: two databases in one process share no state, so each ``DB`` owns one
(``DBOptions.chunk_cache_bytes``) and hands it to the blocks it opens. Entries are keyed
by (owner token, chunk number); an owner (a :class:`~signalfire.tsdb.block.Block`) takes
a token from its cache and drops its entries when it closes, so a token is never reused.

Cached arrays are read-only and never handed out: readers copy the runs they need.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict

from signalfire.tsdb.chunks.chunk_file import DecodedChunk

#: Default budget: the decoded values of ~64 M samples, e.g. 10,000 series x 24 h at
#: 15 s with room to spare.
DEFAULT_BYTES = 512 << 20


def _nbytes(dec: DecodedChunk) -> int:
    return sum(a.nbytes for a in (dec.counts, dec.values, dec.st, dec.ts) if a is not None)


def _freeze(dec: DecodedChunk) -> DecodedChunk:
    for a in (dec.counts, dec.values, dec.st, dec.ts):
        if a is not None:
            a.setflags(write=False)
    return dec


class ChunkCache:
    """Thread-safe LRU of :class:`DecodedChunk` by ``(owner, chunk)``, at most ``max_bytes``."""

    def __init__(self, max_bytes: int = DEFAULT_BYTES) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[int, int], tuple[DecodedChunk, int]] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self._tokens = itertools.count(1)

    def new_owner(self) -> int:
        """A fresh owner token (one per open block)."""
        return next(self._tokens)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, owner: int, chunk: int) -> DecodedChunk | None:
        with self._lock:
            hit = self._items.get((owner, chunk))
            if hit is None:
                self.misses += 1
                return None
            self._items.move_to_end((owner, chunk))
            self.hits += 1
            return hit[0]

    def put(self, owner: int, chunk: int, dec: DecodedChunk) -> DecodedChunk:
        """Store ``dec`` (made read-only) and evict the least recently used past the budget."""
        n = _nbytes(dec)
        if n > self.max_bytes:
            return dec
        dec = _freeze(dec)
        with self._lock:
            old = self._items.pop((owner, chunk), None)
            if old is not None:
                self._bytes -= old[1]
            self._items[(owner, chunk)] = (dec, n)
            self._bytes += n
            self._evict()
        return dec

    def chunks_of(self, owner: int) -> set[int]:
        """The chunk numbers ``owner`` has in the cache (to check nothing stale is kept)."""
        with self._lock:
            return {c for o, c in self._items if o == owner}

    def discard(self, owner: int, chunk: int) -> None:
        """Forget one entry, if present (its chunk no longer exists)."""
        with self._lock:
            old = self._items.pop((owner, chunk), None)
            if old is not None:
                self._bytes -= old[1]

    def drop_owner(self, owner: int) -> None:
        """Forget every chunk of ``owner`` (a closing block)."""
        with self._lock:
            for key in [k for k in self._items if k[0] == owner]:
                self._bytes -= self._items.pop(key)[1]

    def resize(self, max_bytes: int) -> None:
        """Set the budget (0 disables caching); evicts at once when shrinking."""
        with self._lock:
            self.max_bytes = max(0, int(max_bytes))
            self._evict()

    def _evict(self) -> None:
        while self._bytes > self.max_bytes and self._items:
            _, (_, n) = self._items.popitem(last=False)
            self._bytes -= n


__all__ = ["DEFAULT_BYTES", "ChunkCache"]
