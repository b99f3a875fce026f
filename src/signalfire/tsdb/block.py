"""Persistent blocks: immutable directories of one time range, read through mmap.

::

    <ulid>/
      meta.json          BlockMeta (docs/format/meta.md)
      index              symbols, series, postings, piece and chunk tables (docs/format/index.md)
      chunks/000001      compressed chunk records (docs/format/chunks.md)
      tombstones         deleted intervals per series (docs/format/tombstones.md)

:func:`write_block` creates one, :meth:`Block.open` reads one, :meth:`Block.querier`
serves :class:`~signalfire.storage.Querier` reads, :meth:`Block.delete` adds tombstones.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from signalfire.errors import CorruptionError
from signalfire.labels import Matcher
from signalfire.tsdb.block_meta import BlockMeta, is_ulid, new_ulid, read_meta, ulid_time, write_meta
from signalfire.tsdb.block_write import (
    CHUNK_SEGMENT,
    CHUNKS_DIR,
    INDEX_FILE,
    BlockWriter,
    write_block,
)
from signalfire.tsdb.chunks.cache import ChunkCache
from signalfire.tsdb.chunks.chunk_file import RECORD_HEADER, ChunkReader, DecodedChunk
from signalfire.tsdb.index.index_file import IndexReader
from signalfire.tsdb.index.postings import select_postings
from signalfire.tsdb.querier import BlockQuerier
from signalfire.tsdb.tombstones import Tombstones, read_tombstones, write_tombstones
from signalfire.util.ragged import ragged_arange

__all__ = [
    "Block",
    "BlockMeta",
    "BlockQuerier",
    "BlockWriter",
    "delete_block_dir",
    "dir_size",
    "is_ulid",
    "new_ulid",
    "ulid_time",
    "write_block",
]


#: Budget of the cache of a block opened without its database's (CLI tools, tests).
_PRIVATE_CACHE_BYTES = 64 << 20


def dir_size(path: str | os.PathLike[str]) -> int:
    """Bytes of every file under ``path``. Walked without the DB's locks, so a file (or
    the whole folder) removed meanwhile counts as nothing, never an error."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


class Block:
    """An open block. Thread-safe for concurrent queriers; ``delete`` is serialised.

    Use :meth:`open`; :meth:`close` releases the mmap (queriers must be closed first).
    """

    def __init__(
        self,
        dir_: Path,
        meta: BlockMeta,
        index: IndexReader,
        chunks: ChunkReader,
        tomb: Tombstones,
        cache: ChunkCache | None = None,
    ):
        self.dir = dir_
        self._meta = meta
        self.index = index
        self.chunks = chunks
        self.tombstones = tomb
        self._lock = threading.Lock()
        # Decoded chunks live in the database's cache (shared by its blocks) under this
        # block's token; a block opened on its own gets a small private one.
        self._cache = ChunkCache(_PRIVATE_CACHE_BYTES) if cache is None else cache
        self._token = self._cache.new_owner()

    @classmethod
    def open(cls, path: Path | str, cache: ChunkCache | None = None) -> Block:
        """Open and validate the block in ``path``.

        Checks meta.json, every index section's checksum and shape, the chunks file
        header and that the last chunk record ends exactly at the end of the file (a
        truncated file is caught here). Chunk payload checksums are verified when a
        chunk is first read, or all at once by :meth:`verify`. Raises CorruptionError
        naming the file and byte offset.
        """
        dir_ = Path(path)
        meta = read_meta(dir_)
        index = IndexReader(dir_ / INDEX_FILE)
        chunks = ChunkReader(dir_ / CHUNKS_DIR / CHUNK_SEGMENT)
        try:
            if meta.num_series != index.num_series:
                reason = f"meta.json says {meta.num_series} series, the index has {index.num_series}"
                raise CorruptionError(str(dir_ / "meta.json"), 0, reason)
            _check_chunk_extent(index, chunks)
            tomb = read_tombstones(dir_)
        except BaseException:
            chunks.close()
            raise
        return cls(dir_, meta, index, chunks, tomb, cache)

    @property
    def meta(self) -> BlockMeta:
        return self._meta

    @property
    def ulid(self) -> str:
        return self._meta.ulid

    def querier(self, mint: int, maxt: int) -> BlockQuerier:
        """A querier over ``[mint, maxt]`` (ms, both ends inclusive)."""
        return BlockQuerier(self, mint, maxt)

    def chunk(self, c: int) -> DecodedChunk:
        """Decoded chunk number ``c``, read-only (through the chunk cache).

        Raises CorruptionError.
        """
        hit = self._cache.get(self._token, c)
        if hit is not None:
            return hit
        dec = self.chunks.read(int(self.index.t["chunk_ref"][c]))
        return self._cache.put(self._token, c, dec)

    def verify(self) -> None:
        """Decode every chunk once, checking every checksum (``signalfire tsdb`` uses it)."""
        for ref in self.index.t["chunk_ref"].tolist():
            self.chunks.read(int(ref))

    def delete(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> int:
        """Tombstone ``[mint, maxt]`` (inclusive) of the matching series; returns how many.

        Only series with data overlapping the interval get a tombstone (as Prometheus).
        The tombstones file and meta.json are rewritten atomically.
        """
        if mint > maxt:
            return 0
        with self._lock:
            ids = select_postings(self.index, matchers)
            t = self.index.t
            first = t["piece_off"][ids]
            count = t["piece_off"][ids + 1] - first
            pieces = ragged_arange(first, count)
            owner = np.repeat(ids, count)
            hit = (t["piece_mint"][pieces] <= maxt) & (t["piece_maxt"][pieces] >= mint)
            refs = np.unique(owner[hit])
            if len(refs) == 0:
                return 0
            self.tombstones.add(refs, mint, maxt)
            write_tombstones(self.dir, self.tombstones)
            self._meta = replace(self._meta, num_tombstones=len(self.tombstones))
            write_meta(self.dir, self._meta)
            return len(refs)

    def size_bytes(self) -> int:
        """Bytes of every file in the block directory (see :func:`dir_size`)."""
        return dir_size(self.dir)

    def close(self) -> None:
        self._cache.drop_owner(self._token)
        self.chunks.close()

    def __enter__(self) -> Block:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        m = self._meta
        return (
            f"Block({m.ulid}, [{m.min_time}, {m.max_time}), series={m.num_series}, samples={m.num_samples})"
        )


def _check_chunk_extent(index: IndexReader, chunks: ChunkReader) -> None:
    """The last chunk record must end exactly at the end of the chunks file."""
    refs = index.t["chunk_ref"]
    path = str(chunks.path)
    if len(refs) == 0:
        return
    last = int(refs.max())
    if last + RECORD_HEADER.size > chunks.size:
        raise CorruptionError(
            path, chunks.size, f"chunks file truncated: chunk at {last} lies beyond the end"
        )
    hdr = RECORD_HEADER.unpack(chunks._mm[last : last + RECORD_HEADER.size])
    end = last + RECORD_HEADER.size + hdr[4]
    if end != chunks.size:
        reason = "truncated" if end > chunks.size else "has trailing bytes"
        raise CorruptionError(path, min(end, chunks.size), f"chunks file {reason}: last chunk ends at {end}")


def delete_block_dir(path: Path) -> None:
    """Remove a block directory so that a crash midway never leaves a readable half block.

    The directory is first renamed to ``<ulid>.tmp-for-deletion`` (as Prometheus does),
    then removed.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp-for-deletion")
    os.replace(path, tmp)
    shutil.rmtree(tmp)
