"""Options of a tsdb ``DB`` (Prometheus ``tsdb.Options`` and its ``--storage.tsdb.*`` flags).

One frozen dataclass with defaults, so callers name only what they change. The out-of-order
window is the only option that changes at runtime (``DB.set_out_of_order_window``), as in
Prometheus where it follows config reloads; the DB keeps the live value, not this object.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

#: When the WAL is fsynced. ``commit``: every commit (no acknowledged sample lost on power
#: failure; slowest). ``segment``: when a segment is completed, on checkpoints and on close
#: (Prometheus's behaviour: a power failure can lose the tail of the open segment, a process
#: crash loses nothing). ``never``: leave it to the OS (tests, throw-away data).
FsyncPolicy = Literal["commit", "segment", "never"]


@dataclass(frozen=True, slots=True)
class DBOptions:
    """How a DB stores, cuts and deletes data. Times in ms, sizes in bytes."""

    # --storage.tsdb.retention.time; 0 = no time retention (Prometheus defaults to 15d
    # only when neither retention flag is given; the CLI applies that default).
    retention_ms: int = 15 * DAY_MS
    # --storage.tsdb.retention.size; 0 = unlimited.
    retention_bytes: int = 0
    # storage.tsdb.out_of_order_time_window (config file); 0 = out-of-order samples rejected.
    out_of_order_time_window: int = 0
    # --storage.tsdb.min-block-duration: the head's chunk range and the first block size.
    min_block_duration: int = 2 * HOUR_MS
    # --storage.tsdb.max-block-duration: largest block compaction produces (default 10%
    # of retention, at most 31d, like Prometheus; 0 = derive it that way).
    max_block_duration: int = 0
    # --storage.tsdb.wal-segment-size.
    wal_segment_size: int = 128 * 1024 * 1024
    # --storage.tsdb.no-lockfile.
    no_lockfile: bool = False
    # See FsyncPolicy.
    fsync: FsyncPolicy = "segment"
    # --storage.tsdb.allow-overlapping-blocks (always on in Prometheus 3.x; kept for config parity).
    allow_overlapping: bool = True
    # --storage.tsdb.wal-compression is not supported; the field exists so configs round-trip.
    wal_compression: bool = False
    # Run retention and block compaction in DB.compact(); off leaves blocks as cut.
    enable_compaction: bool = True
    # Call DB.compact() from a background thread this often (Prometheus: every minute);
    # 0 = only when the owner calls it (library and test default; the server sets 60s).
    compaction_interval_ms: int = 0
    # Budget of this DB's decoded-chunk cache (shared by its blocks, not by other DBs).
    chunk_cache_bytes: int = 512 << 20

    def block_ranges(self) -> list[int]:
        """Compaction ranges: min_block_duration times powers of 3 up to the max duration."""
        top = self.max_block_duration
        if top <= 0:
            top = min(31 * DAY_MS, self.retention_ms // 10) if self.retention_ms else 31 * DAY_MS
        ranges = [self.min_block_duration]
        while ranges[-1] * 3 <= top:
            ranges.append(ranges[-1] * 3)
        return ranges

    def with_changes(self, **changes: object) -> DBOptions:
        return replace(self, **changes)  # type: ignore[arg-type]
