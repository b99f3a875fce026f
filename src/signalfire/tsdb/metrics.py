"""The DB's self metrics: Prometheus's ``prometheus_tsdb_*`` names with a ``signalfire_`` prefix.

Figures the DB already holds (series in the head, blocks loaded, the head's append
outcome counters) are read by one collector at scrape time from ``DB._figures()``, so
none is copied into a gauge by hand. Events the DB sees happen (a compaction, a
truncation) update instruments here. Types, units and the ``type="float"`` label of the
sample outcome counters follow Prometheus's ``tsdb/head.go`` and ``tsdb/compact.go``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from signalfire.metrics import COUNTER, GAUGE, Registry, exponential_buckets

#: Outcome counters carry Prometheus's sample-type label; native histograms come later.
_FLOAT = {"type": "float"}

#: (metric name, type, help, constant labels, key of ``DB._figures()``): the collected ones.
COLLECTED: tuple[tuple[str, str, str, Mapping[str, str], str], ...] = (
    ("signalfire_tsdb_head_series", GAUGE, "Series in the head block.", {}, "num_series"),
    (
        "signalfire_tsdb_head_samples",
        GAUGE,
        "Samples in the head block (open and cut chunks).",
        {},
        "num_samples",
    ),
    (
        "signalfire_tsdb_head_min_time",
        GAUGE,
        "Minimum timestamp of the head block in ms (0 while it is empty).",
        {},
        "min_time",
    ),
    (
        "signalfire_tsdb_head_max_time",
        GAUGE,
        "Maximum timestamp of the head block in ms (0 while it is empty).",
        {},
        "max_time",
    ),
    (
        "signalfire_tsdb_head_memory_bytes",
        GAUGE,
        "Estimated resident size of the head block.",
        {},
        "memory_bytes",
    ),
    ("signalfire_tsdb_head_chunks", GAUGE, "Chunks in the head block (open and cut).", {}, "num_chunks"),
    (
        "signalfire_tsdb_head_chunks_bytes",
        GAUGE,
        "Size of the compressed chunks of the head block.",
        {},
        "chunk_bytes",
    ),
    (
        "signalfire_tsdb_head_samples_appended_total",
        COUNTER,
        "Samples appended to the head.",
        _FLOAT,
        "samples_appended_total",
    ),
    (
        "signalfire_tsdb_out_of_order_samples_total",
        COUNTER,
        "Samples rejected for being older than their series' newest one, the out-of-order window off.",
        _FLOAT,
        "out_of_order_samples_total",
    ),
    (
        "signalfire_tsdb_out_of_bound_samples_total",
        COUNTER,
        "Samples rejected for falling below the head's appendable range, the out-of-order window off.",
        _FLOAT,
        "out_of_bounds_samples_total",
    ),
    (
        "signalfire_tsdb_too_old_samples_total",
        COUNTER,
        "Samples rejected for being older than the out-of-order window allows.",
        _FLOAT,
        "too_old_samples_total",
    ),
    (
        "signalfire_tsdb_duplicate_samples_total",
        COUNTER,
        "Total number of samples rejected for a different value at an existing timestamp.",
        {},
        "duplicate_samples_total",
    ),
    ("signalfire_tsdb_blocks_loaded", GAUGE, "Data blocks currently loaded.", {}, "num_blocks"),
    (
        "signalfire_tsdb_storage_blocks_bytes",
        GAUGE,
        "Bytes on disk of all loaded blocks.",
        {},
        "blocks_bytes",
    ),
    (
        "signalfire_tsdb_wal_segment_current",
        GAUGE,
        "Index of the WAL segment being written.",
        {},
        "wal_segment",
    ),
    (
        "signalfire_tsdb_wal_corruptions_total",
        COUNTER,
        "WAL corruptions repaired (torn or corrupt tails cut) when the DB was opened.",
        {},
        "wal_repairs_total",
    ),
    (
        "signalfire_tsdb_wal_repair_dropped_bytes_total",
        COUNTER,
        "Bytes of WAL records dropped by repairs when the DB was opened.",
        {},
        "wal_repair_dropped_bytes_total",
    ),
    (
        "signalfire_tsdb_wal_replay_unknown_refs_total",
        COUNTER,
        "Samples in the WAL whose series record was lost, dropped at replay.",
        {},
        "wal_replay_unknown_refs_total",
    ),
    (
        "signalfire_tsdb_wal_replay_unknown_series_total",
        COUNTER,
        "Distinct series references in the WAL whose series record was lost.",
        {},
        "wal_replay_unknown_series_total",
    ),
    (
        "signalfire_tsdb_wal_replay_lost_min_time",
        GAUGE,
        "Oldest timestamp in ms that WAL damage may have lost at open (0 when nothing was lost).",
        {},
        "wal_replay_lost_min_time",
    ),
    (
        "signalfire_tsdb_wal_replay_lost_max_time",
        GAUGE,
        "Newest timestamp in ms that WAL damage may have lost at open (0 when nothing was lost).",
        {},
        "wal_replay_lost_max_time",
    ),
    (
        "signalfire_tsdb_out_of_order_time_window_seconds",
        GAUGE,
        "How far behind the newest sample an out-of-order sample is still accepted.",
        {},
        "out_of_order_time_window_seconds",
    ),
)

#: Compaction takes milliseconds for a small head and minutes for a large block range.
COMPACTION_BUCKETS = exponential_buckets(0.01, 4, 10)


class TSDBMetrics:
    """The DB's metrics in ``registry``; ``figures`` is read once per scrape."""

    def __init__(self, registry: Registry, figures: Callable[[], Mapping[str, float]]) -> None:
        self.registry = registry
        self.compactions = registry.counter(
            "signalfire_tsdb_compactions_total",
            "Compactions run (head cuts and block merges), one per block written.",
        )
        self.compactions_failed = registry.counter(
            "signalfire_tsdb_compactions_failed_total", "Background compaction runs that failed."
        )
        self.compaction_duration = registry.histogram(
            "signalfire_tsdb_compaction_duration_seconds",
            "Duration of compaction runs (a head cut or a merge of blocks), per block written.",
            buckets=COMPACTION_BUCKETS,
        )
        self.head_truncations = registry.counter(
            "signalfire_tsdb_head_truncations_total",
            "Head truncations run (each is followed by a WAL checkpoint).",
        )
        keys = {name: key for name, _, _, _, key in COLLECTED}

        def collect() -> dict[str, float]:
            f = figures()
            return {name: f[key] for name, key in keys.items()}

        descs = [Registry.desc(name, typ, help, (), labels) for name, typ, help, labels, _ in COLLECTED]
        registry.collector(descs, collect)
        timed = (self.compaction_duration,)
        counted = (self.compactions, self.compactions_failed, self.head_truncations)
        self.names = [*keys, *(m.desc.name for m in (*counted, *timed))]

    def compaction_done(self, started: float) -> None:
        """One block written since ``started`` (``time.perf_counter()``)."""
        self.compactions.inc()
        self.compaction_duration.observe(time.perf_counter() - started)

    def unregister(self) -> None:
        """Take the DB's families out of a registry that may outlive it (a server's)."""
        self.registry.unregister(self.names)
