"""Block codec bench: bytes per sample and speed of signalfire's on-disk blocks.

    python bench/codec.py                  # 10,000 series x 2 h at 15 s (4.8 M samples)
    python bench/codec.py --series 1000 --hours 1
    python bench/codec.py --compact 3      # also write 3 consecutive 2h blocks and compact them

Data: the series families of ``shared/bench/sfbench/gen.py`` (counters, histogram
buckets, node gauges, info series). Prints bytes per sample for the whole block
directory (index, chunks, meta, tombstones) and per series family (value chunks only,
each family encoded alone), plus write / open / select times. Prometheus's own figure
is ~1.3 bytes per sample; the issue's target is at most 1.0. Never asserted.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from datagen import dataset

from signalfire.labels import Labels, Matcher
from signalfire.storage import SeriesSet
from signalfire.tsdb import Block, write_block
from signalfire.tsdb.chunks.chunk_file import encode_value_chunk
from signalfire.tsdb.compact import compact_blocks

H = 3_600_000


def series_set(ds: object, t0: int, t1: int) -> SeriesSet:
    """The dataset's steps [t0, t1) as a SeriesSet sorted by labels."""
    labels = [Labels(tuple(ls)) for ls in ds.labels]  # type: ignore[attr-defined]
    order = sorted(range(len(labels)), key=labels.__getitem__)
    ts = ds.ts_inst[ds.inst[order], t0:t1]  # type: ignore[attr-defined]
    vals = ds.values[order, t0:t1]  # type: ignore[attr-defined]
    n = t1 - t0
    return SeriesSet(
        [labels[i] for i in order],
        np.arange(len(order) + 1, dtype=np.int64) * n,
        ts.reshape(-1),
        vals.reshape(-1),
    )


def timed(f, *a, **kw):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    r = f(*a, **kw)
    return r, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--compact", type=int, default=0, help="also compact this many consecutive blocks")
    args = ap.parse_args()
    blocks = max(1, args.compact)
    steps = round(args.hours * H / 15_000)
    ds = dataset(args.series, args.hours * blocks, start_ms=1_700_000_000_000 // (2 * H) * (2 * H))
    tmp = Path(tempfile.mkdtemp(prefix="sf-codec-"))
    try:
        ss = series_set(ds, 0, steps)
        n = ss.num_samples
        mint = int(ss.ts.min()) // (2 * H) * (2 * H)
        meta, t_write = timed(
            write_block, tmp, ss, min_time=mint, max_time=mint + 2 * H * max(1, int(args.hours / 2))
        )
        blk, t_open = timed(Block.open, tmp / meta.ulid)
        size = blk.size_bytes()
        files = {f.name: f.stat().st_size for f in (tmp / meta.ulid).rglob("*") if f.is_file()}
        print(f"data: {len(ss)} series x {steps} steps = {n:,} samples")
        print(f"{'block bytes/sample':32s} {size / n:8.3f}   (Prometheus ~1.3, target <= 1.0)")
        print(f"{'  chunks':32s} {files['000001'] / n:8.3f}")
        print(f"{'  index':32s} {files['index'] / n:8.3f}")
        print(f"{'write_block':32s} {t_write:8.3f} s   {n / t_write / 1e6:6.1f} M samples/s")
        print(f"{'Block.open':32s} {t_open * 1e3:8.1f} ms")
        q = blk.querier(mint, mint + 10 * H)
        r, t_all = timed(q.select, [])
        assert r.num_samples == n
        print(f"{'select all':32s} {t_all:8.3f} s   {n / t_all / 1e6:6.1f} M samples/s")
        _, t_one = timed(q.select, [Matcher.equal("__name__", "go_goroutines")])
        print(f"{'select go_goroutines':32s} {t_one * 1e3:8.1f} ms")
        blk.close()
        print("value chunks alone, per family (bytes/sample):")
        kinds = np.asarray(ds.kinds)
        for kind in sorted(set(ds.kinds)):
            ix = np.flatnonzero(kinds == kind)
            rec = encode_value_chunk(np.full(len(ix), steps, np.int64), ds.values[ix, :steps].reshape(-1))
            print(f"  {kind:12s} {len(ix):6d} series {len(rec) / (len(ix) * steps):8.3f}")
        if args.compact > 1:
            opened = []
            for k in range(1, args.compact):
                part = series_set(ds, k * steps, (k + 1) * steps)
                m = write_block(tmp, part, min_time=mint + k * 2 * H, max_time=mint + (k + 1) * 2 * H)
                opened.append(Block.open(tmp / m.ulid))
            opened.insert(0, Block.open(tmp / meta.ulid))
            cm, t_c = timed(compact_blocks, tmp, opened)
            assert cm is not None
            with Block.open(tmp / cm.ulid) as c:
                print(
                    f"compacted {args.compact} blocks: {cm.num_samples:,} samples, "
                    f"{c.size_bytes() / cm.num_samples:.3f} bytes/sample, {t_c:.2f} s"
                )
            for b in opened:
                b.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
