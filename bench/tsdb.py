"""Storage bench: signalfire's TSDB beside Prometheus 2.42 on one generated data set.

    python bench/tsdb.py                       # 10,000 series x 2 h at 15 s (4.8 M samples)
    python bench/tsdb.py --quick               # 1,000 series x 30 min, a smoke run
    python bench/tsdb.py --series 50000 --hours 2 --out /tmp/tsdb-bench

Prints, side by side in one run:

* bytes per sample on disk in blocks: Prometheus's blocks from Debian's ``promtool tsdb
  create-blocks-from openmetrics``, signalfire's blocks after ``Database.compact()`` and
  after ``signalfire tsdb create-blocks-from openmetrics`` on the same file;
* load time of the same OpenMetrics file by both backfill tools;
* signalfire's ``append_batch`` throughput (one batch per scrape step, all series), wall and
  per CPU second (one core);
* head memory per active series: signalfire's RSS growth while the head fills, in this
  process; Prometheus's RSS growth and Go heap-in-use growth while the same samples arrive
  by remote write, divided by ``prometheus_tsdb_head_series``;
* the time to select every series over the whole range, from the head and from blocks.

Figures are never asserted; the target column says what the issue asked for.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen
from _prom import Prometheus, dir_bytes, promtool_backfill

ALL = '{__name__=~".+"}'


def rss_bytes() -> int:
    """Resident size after freed heap memory is handed back: signalfire keeps freed large
    blocks for reuse (util/malloc.py), which is not head memory."""
    from signalfire.util.malloc import release_free_memory

    release_free_memory()
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def attempt(label: str, fn: Callable[[], Any]) -> Any:
    """Run one signalfire step; a missing piece prints its reason instead of ending the bench."""
    try:
        return fn()
    except Exception as err:  # a bench reports what it could measure
        print(f"  {label}: not measured ({err.__class__.__name__}: {err})", file=sys.stderr)
        return None


def block_samples(path: Path) -> int:
    from signalfire.cli._blocks import list_blocks

    return sum(b.num_samples for b in list_blocks(path))


def append_all(db: Any, ds: datagen.Dataset) -> dict[str, float]:
    """Append the data set one scrape step at a time (S samples per ``append_batch``).

    Memory is the RSS growth from series creation (``refs``) to the last commit; the input
    arrays are laid out per step before the first reading, so no copy is counted as head.
    """
    from signalfire.labels import Labels

    labels = [Labels.from_pairs(ls) for ls in ds.labels]
    ts_steps = np.ascontiguousarray(ds.ts(0, ds.n_series, 0, ds.n_steps).T)  # [T, S]
    value_steps = np.ascontiguousarray(ds.values.T)  # [T, S]
    rss0 = rss_bytes()
    with db.appender() as app:
        refs = np.asarray(app.refs(labels), np.int64)
    cpu0, t0 = time.process_time(), time.perf_counter()
    appended = 0
    for t in range(ds.n_steps):  # loop over steps; each is one batch of all series
        with db.appender() as app:
            appended += app.append_batch(refs, ts_steps[t], value_steps[t]).appended
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "appended": appended,
        "samples_per_s": appended / wall,
        "samples_per_cpu_s": appended / cpu,
        "head_rss_per_series": (rss_bytes() - rss0) / ds.n_series,
    }


def timed_select_blocks(path: Path, ds: datagen.Dataset) -> float:
    """Select every series over the whole range from blocks only (a DB opened on ``path``)."""
    import signalfire

    with signalfire.open(path, keep_freed_memory=True) as db:
        _, t = timed(lambda: db.select(ALL, ds.min_ts / 1000, ds.max_ts / 1000))
    return t


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def signalfire_side(ds: datagen.Dataset, om: Path, out: Path) -> dict[str, Any]:
    import signalfire
    from signalfire.cli.backfill import backfill

    res: dict[str, Any] = {}
    bf = out / "sf-backfill"
    r = attempt("signalfire backfill", lambda: timed(lambda: backfill(om, bf)))
    if r is not None:
        res["load_s"] = r[1]
        res["backfill_bps"] = dir_bytes(bf, only_blocks=True) / max(1, block_samples(bf))
    # The allocator tuned as a server tunes it (util/malloc.py): the benchmark owns its process.
    db = attempt(
        "signalfire open",
        lambda: signalfire.open(out / "sf-db", keep_freed_memory=True),  # type: ignore[attr-defined]
    )
    if db is None:
        return res
    try:
        app = attempt("append_batch", lambda: append_all(db, ds))
        if app:
            res.update(app)
        sel = attempt(
            "select (head)", lambda: timed(lambda: db.select(ALL, ds.min_ts / 1000, ds.max_ts / 1000))
        )
        if sel:
            res["select_head_s"] = sel[1]
            res["select_samples"] = sel[0].num_samples
        attempt("compact", db.compact)
        n = attempt("block stats", lambda: block_samples(out / "sf-db"))
        blocks_dir = out / "sf-db"
        if not n:
            # A 2h data set never makes the head compactable (Prometheus's rule: the head must
            # span 1.5 block ranges), so persist it the way a snapshot does: as one block.
            blocks_dir = out / "sf-snapshot"
            attempt("snapshot", lambda: db.snapshot(blocks_dir))
            n = attempt("block stats", lambda: block_samples(blocks_dir))
            res["persisted_by"] = "head snapshot"
        if n:
            res["compacted_bps"] = dir_bytes(blocks_dir, only_blocks=True) / n
            res["compacted_samples"] = n
            sel = attempt("select (blocks)", lambda: timed_select_blocks(blocks_dir, ds))
            if sel is not None:
                res["select_blocks_s"] = sel
    finally:
        db.close()
    return res


def prometheus_side(ds: datagen.Dataset, om: Path, out: Path, remote_write: bool) -> dict[str, Any]:
    res: dict[str, Any] = {}
    prom_dir = out / "prom-backfill"
    res["load_s"] = promtool_backfill(om, prom_dir)
    from signalfire.cli._blocks import is_ulid

    samples = 0
    for d in prom_dir.iterdir():
        if d.is_dir() and is_ulid(d.name):
            samples += json.loads((d / "meta.json").read_text())["stats"]["numSamples"]
    res["bps"] = dir_bytes(prom_dir, only_blocks=True) / max(1, samples)
    res["samples"] = samples
    if not remote_write:
        return res
    from sfbench.ingest import build_payloads, run_ingest

    payloads = build_payloads(ds, window_steps=1, samples_per_request=2000, shards=4)
    with Prometheus(out / "prom-rw", "--web.enable-remote-write-receiver", no_compaction=False) as p:
        keys = (
            "process_resident_memory_bytes",
            "go_memstats_heap_inuse_bytes",
            "prometheus_tsdb_head_series",
        )
        before = p.self_metrics(*keys)
        ing = run_ingest(p.url + "/api/v1/write", p.pid, payloads)
        time.sleep(2)
        after = p.self_metrics(*keys)
    series = max(1.0, after.get("prometheus_tsdb_head_series", 0.0))
    res["rw_samples_per_s"] = ing["samples_per_s"]
    res["rw_failed"] = ing["samples_failed"]
    res["head_series"] = int(series)
    res["head_rss_per_series"] = (
        after["process_resident_memory_bytes"] - before["process_resident_memory_bytes"]
    ) / series
    res["head_heap_per_series"] = (
        after["go_memstats_heap_inuse_bytes"] - before["go_memstats_heap_inuse_bytes"]
    ) / series
    return res


def fmt(v: Any, spec: str = ".2f") -> str:
    return "n/a" if v is None else format(v, spec)


def report(ds: datagen.Dataset, sf: dict[str, Any], pr: dict[str, Any]) -> None:
    rows = [
        (
            f"bytes/sample in blocks ({sf.get('persisted_by', 'compacted')})",
            fmt(sf.get("compacted_bps"), ".3f"),
            fmt(pr.get("bps"), ".3f"),
            "<= 1.0 (Prometheus ~1.3)",
        ),
        (
            "bytes/sample after backfill of data.om",
            fmt(sf.get("backfill_bps"), ".3f"),
            fmt(pr.get("bps"), ".3f"),
            "",
        ),
        ("load time of data.om, s (backfill)", fmt(sf.get("load_s")), fmt(pr.get("load_s")), ""),
        (
            "append samples/s (wall)",
            fmt(sf.get("samples_per_s"), ",.0f"),
            fmt(pr.get("rw_samples_per_s"), ",.0f") + " (remote write)",
            ">= 1,000,000 per core",
        ),
        ("append samples per CPU-second", fmt(sf.get("samples_per_cpu_s"), ",.0f"), "", ">= 1,000,000"),
        (
            "head RSS growth per series, bytes",
            fmt(sf.get("head_rss_per_series"), ",.0f"),
            fmt(pr.get("head_rss_per_series"), ",.0f"),
            "below Prometheus",
        ),
        ("head Go heap-in-use growth per series", "", fmt(pr.get("head_heap_per_series"), ",.0f"), ""),
        ("select all series, whole range, s (head)", fmt(sf.get("select_head_s"), ".3f"), "", ""),
        ("select all series, whole range, s (blocks)", fmt(sf.get("select_blocks_s"), ".3f"), "", ""),
    ]
    w0 = max(len(r[0]) for r in rows) + 2
    print(f"\n{'':{w0}}{'signalfire':>18}{'Prometheus 2.42':>30}   target")
    for name, a, b, target in rows:
        print(f"{name:{w0}}{a:>18}{b:>30}   {target}")
    print(
        f"\ndata: {ds.n_series:,} series x {ds.n_steps} steps (15 s) = {ds.n_samples:,} samples; "
        f"signalfire blocks hold {sf.get('compacted_samples', 'n/a')} samples, "
        f"Prometheus's {pr.get('samples')}; "
        f"select returned {sf.get('select_samples', 'n/a')} samples"
    )
    print(
        "memory: signalfire = growth of this process's RSS from series creation to the last append "
        "(head, WAL buffers); "
        "Prometheus = growth of process_resident_memory_bytes and go_memstats_heap_inuse_bytes "
        f"over prometheus_tsdb_head_series ({pr.get('head_series', 'n/a')}) "
        "after remote write of the same samples"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--out", default="", help="working folder (default: a temp dir, removed at the end)")
    ap.add_argument("--quick", action="store_true", help="1,000 series x 30 min")
    ap.add_argument(
        "--no-remote-write", action="store_true", help="skip Prometheus's head-memory measurement"
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.series, args.hours = 1_000, 0.5
    out = Path(args.out or tempfile.mkdtemp(prefix="sf-tsdb-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    try:
        ds = datagen.dataset(args.series, args.hours)
        om = out / "data.om"
        _, t = timed(lambda: datagen.write_openmetrics(ds, om))
        print(f"wrote {om} ({om.stat().st_size / 1e6:.0f} MB) in {t:.1f}s", file=sys.stderr)
        pr = prometheus_side(ds, om, out, not args.no_remote_write)
        sf = signalfire_side(ds, om, out)
        report(ds, sf, pr)
        print(
            f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
        )
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
