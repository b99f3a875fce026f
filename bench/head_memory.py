"""Resident head memory per active series, measured (tracemalloc and RSS) and as estimated.

Appends S series x H hours at 15 s (scrape-shaped: every series once per batch, WAL on)
and reports, per series: memory traced by ``tracemalloc`` (numpy buffers included) for the
samples alone and for samples + registry (labels, postings), the process RSS growth, and
the head's own estimate (``DB.stats()["memory_bytes"]``). Then times a select of all
series over the whole head. Never asserts.

    python bench/head_memory.py [--series 10000] [--hours 2] [--values gen|random]

``--values gen`` uses the sfbench generator's shapes (counters, histograms, gauges);
``random`` uses uniform random floats (incompressible mantissas: the worst case).
"""

from __future__ import annotations

import argparse
import gc
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from signalfire.labels import Labels, Matcher
from signalfire.tsdb import DBOptions, open_db

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _rss() -> int:
    """Current resident set size in bytes (Linux /proc; falls back to the peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:  # pragma: no cover
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _values(kind: str, series: int, steps: int) -> np.ndarray:
    if kind == "random":
        return np.random.default_rng(1).random((series, steps))
    import datagen

    ds = datagen.dataset(series, steps * 15 / 3600)
    return np.asarray(ds.values[:series, :steps], np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--values", default="gen", choices=["gen", "random"])
    ap.add_argument("--chunk-samples", type=int, default=0, help="override Head.chunk_samples")
    args = ap.parse_args()
    steps = int(args.hours * 3600 // 15)
    vals = _values(args.values, args.series, steps)
    path = tempfile.mkdtemp(prefix="sf-mem-")
    try:
        db = open_db(path, DBOptions(fsync="never", compaction_interval_ms=0))
        if args.chunk_samples and hasattr(db.head, "set_chunk_samples"):
            db.head.set_chunk_samples(args.chunk_samples)
        gc.collect()
        tracemalloc.start()
        rss0 = _rss()
        m0 = tracemalloc.get_traced_memory()[0]
        app = db.appender()
        refs = app.refs(
            [
                Labels.from_strings("__name__", "bench_metric", "job", "bench", "i", str(i))
                for i in range(args.series)
            ]
        )
        app.rollback()
        gc.collect()
        m1 = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        for k in range(steps):
            with db.appender() as a:
                a.append_batch(refs, 1_700_000_000_000 + k * 15_000, vals[:, k])
        elapsed = time.perf_counter() - t0
        gc.collect()
        m2 = tracemalloc.get_traced_memory()[0]
        rss2 = _rss()
        tracemalloc.stop()
        est = db.stats()["memory_bytes"]
        n = args.series * steps
        t0 = time.perf_counter()
        q = db.querier(0, 2**62)
        got = q.select([Matcher.equal("__name__", "bench_metric")])
        sel = time.perf_counter() - t0
        t0 = time.perf_counter()
        q.select([Matcher.equal("__name__", "bench_metric"), Matcher.equal("i", "17")])
        sel1 = time.perf_counter() - t0
        q.close()
        order = np.array([int(ls.get("i")) for ls in got.labels])
        want = vals[order].ravel()
        ok = got.num_samples == n and np.array_equal(got.values.view(np.uint64), want.view(np.uint64))
        s = args.series
        print(f"series={s} samples/series={steps} values={args.values} (select bit-identical: {ok})")
        print(
            f"  per series: samples {(m2 - m1) / s:8.0f} B   samples+registry {(m2 - m0) / s:8.0f} B"
            f"   RSS delta {(rss2 - rss0) / s:8.0f} B   head estimate {est / s:8.0f} B"
        )
        print(f"  samples only: {(m2 - m1) / n:.2f} B/sample (tracemalloc)", end="")
        chunks = getattr(db.head, "chunks", None)
        if chunks is not None and chunks.num_samples:
            print(
                f"; cut chunks {chunks.nbytes / chunks.num_samples:.2f} B/sample over "
                f"{chunks.num_samples:,} samples in {len(chunks.groups)} groups",
                end="",
            )
        print()
        print(
            f"  append {n / elapsed / 1e6:.2f} M samples/s (traced)   select all {sel * 1e3:.0f} ms"
            f" ({n / sel / 1e6:.1f} M samples/s)   select one {sel1 * 1e3:.1f} ms"
        )
        db.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
