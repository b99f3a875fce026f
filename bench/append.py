"""Append throughput through ``Appender.append_batch`` + ``commit`` (WAL on, fsync=segment).

Prints samples/s for a scrape-like workload: S series, one timestamp per batch (every
series once per batch), as a scrape or a remote-write request delivers them. Never asserts.

    python bench/append.py [--series 10000] [--batches 200] [--fsync segment]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import numpy as np

from signalfire.labels import Labels, Matcher
from signalfire.tsdb import DBOptions, open_db


def run(series: int, batches: int, fsync: str, per_batch_ts: int) -> tuple[float, float, float]:
    """Append rate, WAL replay rate on reopen and select-all rate, in samples/s."""
    path = tempfile.mkdtemp(prefix="sf-bench-")
    try:
        db = open_db(path, DBOptions(fsync=fsync))  # type: ignore[arg-type]
        app = db.appender()
        refs = app.refs([Labels.from_strings("__name__", "bench_metric", "i", str(i)) for i in range(series)])
        app.rollback()
        rng = np.random.default_rng(1)
        refs_b = np.tile(refs, per_batch_ts)
        values = rng.random(len(refs_b))
        t0 = time.perf_counter()
        for b in range(batches):
            ts = np.repeat(np.arange(per_batch_ts, dtype=np.int64) + b * per_batch_ts, series) * 15_000
            with db.appender() as app:
                app.append_batch(refs_b, ts, values)
        elapsed = time.perf_counter() - t0
        n = series * batches * per_batch_ts
        assert db.head.num_samples == n, "bench: samples lost"
        db.close()
        t0 = time.perf_counter()
        db = open_db(path, DBOptions(fsync=fsync))  # type: ignore[arg-type]
        replay = time.perf_counter() - t0
        assert db.head.num_samples == n, "bench: samples lost on replay"
        t0 = time.perf_counter()
        q = db.querier(0, 2**62)
        got = q.select([Matcher.equal("__name__", "bench_metric")]).num_samples
        select = time.perf_counter() - t0
        assert got == n
        db.close()
        return n / elapsed, n / replay, n / select
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--fsync", default="segment", choices=["commit", "segment", "never"])
    args = ap.parse_args()
    for per_ts in (1, 10):
        rate, replay, select = run(args.series, args.batches // per_ts, args.fsync, per_ts)
        print(
            f"series={args.series}  samples/batch={args.series * per_ts}  fsync={args.fsync}:  "
            f"append+commit {rate / 1e6:5.2f}  WAL replay {replay / 1e6:5.2f}  "
            f"head select-all {select / 1e6:5.2f}  (M samples/s)"
        )
    print("Prometheus reference: ~1-2 M samples/s per core through its per-sample Appender (Go).")


if __name__ == "__main__":
    main()
