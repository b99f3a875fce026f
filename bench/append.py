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

from signalfire.labels import Labels
from signalfire.tsdb import DBOptions, open_db


def run(series: int, batches: int, fsync: str, per_batch_ts: int) -> float:
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
        return n / elapsed
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--fsync", default="segment", choices=["commit", "segment", "never"])
    args = ap.parse_args()
    for per_ts in (1, 10):
        rate = run(args.series, args.batches // per_ts, args.fsync, per_ts)
        print(
            f"append_batch+commit  series={args.series:>7}  samples/batch={args.series * per_ts:>7}  "
            f"fsync={args.fsync:<7}  {rate / 1e6:6.2f} M samples/s"
        )
    print("Prometheus reference: ~1-2 M samples/s per core through its per-sample Appender (Go).")


if __name__ == "__main__":
    main()
