"""PromQL bench: signalfire in process beside Prometheus 2.42 over HTTP, same data, same queries.

    python bench/promql.py                     # 10,000 series x 24 h at 15 s
    python bench/promql.py --quick             # 500 series x 3 h, a smoke run
    python bench/promql.py --profile rate_all_range   # pyinstrument profile of one 24 h range query
    python bench/promql.py --out DIR           # keep the loaded stores in DIR, reuse them next time

Loads one generated data set (gen.py's families, timestamps off whole seconds, ``le`` in
float form) into signalfire through ``append_batch`` and into Prometheus by backfilling
one OpenMetrics file per 2-hour window with Debian's promtool, then starts Prometheus on
that folder (compaction off, so it does not run during timings). Every query of
``shared/bench/queries.toml`` runs as an instant query and as 1 h, 6 h and 24 h range
queries at Grafana's steps (15 s, 20 s, 1 m); answers are compared with a float tolerance
and each row prints two Prometheus times, signalfire's in-process time and the ratios, then
the median ratios of the range queries. Prometheus's times: over HTTP (request to the last
byte of the JSON body; the client's JSON decoding is not counted) and its own engine time
(``stats=all``'s execTotalTime, no encoding or HTTP), which is the like of signalfire's
in-process time. Each is the median of three runs (one when a run takes over 2 s), after
an untimed warm-up run.

Queries are issued at whole seconds, so no sample sits on a step or window boundary, where
Prometheus 2.x (left-closed windows) and 3.x (left-open) differ by design; a subquery's
inner steps do land on its window start, so a subquery disagreement is reported as that
documented change rather than counted.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen
from _common import (
    load_queries,
    load_signalfire,
    median_time,
    median_timed,
    open_signalfire,
    prom_engine_ms,
    verdict,
)
from _prom import Prometheus, promtool_backfill

RANGES = (("1h", 3600, 15), ("6h", 6 * 3600, 20), ("24h", 24 * 3600, 60))  # span s, Grafana step s
WINDOW_MS = 2 * 3_600_000


def load_prometheus(ds: datagen.Dataset, out: Path) -> float:
    """Backfill with one OpenMetrics file per block window, so promtool reads each line once."""
    prom_dir = out / "prom"
    prom_dir.mkdir(parents=True, exist_ok=True)
    total = 0.0
    lo = ds.min_ts // WINDOW_MS * WINDOW_MS
    for w0 in range(lo, ds.max_ts + 1, WINDOW_MS):
        om = out / "window.om"
        datagen.write_openmetrics(ds, om, w0, w0 + WINDOW_MS)
        total += promtool_backfill(om, prom_dir)
        om.unlink()
    return total


def run_query(
    db: Any, prom: Prometheus, q: dict[str, str], mode: str, end_s: int, span_s: int, step_s: int
) -> dict:
    """Prometheus over HTTP, then signalfire in process, then the comparison; one table row."""
    expr = q["expr"]
    row = {"name": q["name"], "mode": mode, "prom_ms": math.nan, "prom_eval_ms": math.nan, "sf_ms": math.nan}
    if mode == "instant":
        start = end = end_s
        pdata, p_s = median_timed(lambda: prom.query(expr, end_s))
    else:
        end = end_s // step_s * step_s
        start = end - span_s
        pdata, p_s = median_timed(lambda: prom.query_range(expr, start, end, step_s))
    row["prom_ms"] = p_s * 1e3
    row["prom_eval_ms"] = prom_engine_ms(prom, expr, mode, start, end, step_s)[1]
    if db is None:
        return {**row, "verdict": "signalfire n/a"}
    try:
        if mode == "instant":
            sres, s_s = median_time(lambda: db.query(expr, end_s))
        else:
            sres, s_s = median_time(lambda: db.query_range(expr, start, end, step_s))
    except Exception as err:  # a failing query is a row, not the end of the bench
        return {**row, "verdict": f"ERROR in signalfire {err.__class__.__name__}: {str(err)[:80]}"}
    row["sf_ms"] = s_s * 1e3
    return {**row, "verdict": verdict(expr, pdata, sres.to_json())}


def _ratio(row: dict, key: str) -> float:
    return row["sf_ms"] / row[key] if row[key] and math.isfinite(row[key]) else math.nan


def _range_vector(prom: Prometheus, expr: str, t_s: int) -> bool:
    return prom.query(expr, t_s)[0]["resultType"] == "matrix"


def profile(db: Any, q: dict[str, str], end_s: int, span_s: int, step_s: int) -> None:
    from pyinstrument import Profiler

    end = end_s // step_s * step_s
    db.query_range(q["expr"], end - span_s, end, step_s)  # warm: caches and page faults as in the timed runs
    prof = Profiler()
    prof.start()
    db.query_range(q["expr"], end - span_s, end, step_s)
    prof.stop()
    print(prof.output_text(unicode=True, color=False))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--quick", action="store_true", help="500 series x 3 h")
    ap.add_argument(
        "--profile", default="", metavar="QUERY", help="profile one query (by name) in signalfire"
    )
    ap.add_argument("--out", default="", help="working folder (default: a temp dir, removed at the end)")
    args = ap.parse_args(argv)
    if args.quick:
        args.series, args.hours = 500, 3.0
    out = Path(args.out or tempfile.mkdtemp(prefix="sf-promql-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    queries = load_queries()
    try:
        # --out DIR keeps both stores for the next run, and the data set's time anchor with
        # them: gen.py anchors the data at "now", which has moved on by the next run.
        ready = out / "loaded.json"
        kept = json.loads(ready.read_text()) if ready.exists() else None
        if kept and (kept["series"], kept["hours"]) != (args.series, args.hours):
            sys.exit(f"{out} holds {kept['series']} series x {kept['hours']} h; use another --out")
        ds = datagen.dataset(args.series, args.hours, start_ms=kept["start_ms"] if kept else None)
        end_s = ds.max_ts // 1000  # a whole second just after the newest sample of most instances
        print(
            f"data: {ds.n_series:,} series x {ds.n_steps} steps = {ds.n_samples:,} samples", file=sys.stderr
        )
        if kept:
            db = open_signalfire(out / "sf")
            print(f"reusing the stores in {out}: {kept['load']}", file=sys.stderr)
        else:
            prom_load = load_prometheus(ds, out)
            try:
                db, sf_load = load_signalfire(ds, out / "sf")
            except Exception as err:  # report Prometheus's side even when signalfire cannot load yet
                print(f"signalfire could not load the data: {err.__class__.__name__}: {err}", file=sys.stderr)
                db, sf_load = None, math.nan
            msg = f"load: promtool backfill {prom_load:.1f}s, signalfire append+compact {sf_load:.1f}s"
            print(msg, file=sys.stderr)
            if args.out and db is not None:
                kept = {"series": args.series, "hours": args.hours, "start_ms": ds.start_ms, "load": msg}
                ready.write_text(json.dumps(kept) + "\n")
        span_max = int(args.hours * 3600)
        if args.profile:
            q = next(q for q in queries if q["name"] == args.profile)
            profile(db, q, end_s, min(span_max, 24 * 3600), 60)
            return 0
        rows = []
        print(
            f"{'query':<26}{'mode':>8}{'Prom HTTP ms':>13}{'Prom eval ms':>13}{'signalfire ms':>14}"
            f"{'sf/HTTP':>9}{'sf/eval':>9}"
        )
        with Prometheus(out / "prom") as prom:
            for q in queries:
                modes = [("instant", 0, 0)] + [(n, s, st) for n, s, st in RANGES if s <= span_max]
                for mode, span, step in modes:
                    if mode != "instant" and _range_vector(prom, q["expr"], end_s):
                        break  # a range-vector expression has no range-query form
                    try:
                        rows.append(run_query(db, prom, q, mode, end_s, span, step))
                    except Exception as err:  # a failing query is a row, not the end of the bench
                        rows.append(
                            {
                                "name": q["name"],
                                "mode": mode,
                                "prom_ms": math.nan,
                                "prom_eval_ms": math.nan,
                                "sf_ms": math.nan,
                                "verdict": f"ERROR in Prometheus {err.__class__.__name__}: {str(err)[:80]}",
                            }
                        )
                    r = rows[-1]
                    print(
                        f"{r['name']:<26}{r['mode']:>8}{r['prom_ms']:>13.1f}{r['prom_eval_ms']:>13.1f}"
                        f"{r['sf_ms']:>14.1f}{_ratio(r, 'prom_ms'):>9.2f}{_ratio(r, 'prom_eval_ms'):>9.2f}"
                        f"  {r['verdict']}",
                        flush=True,
                    )
        if db is not None:
            db.close()
        bad = [r for r in rows if r["verdict"].startswith(("DIFFERENT", "ERROR"))]
        for key, what in (("prom_ms", "Prometheus over HTTP"), ("prom_eval_ms", "Prometheus's engine time")):
            ratios = [_ratio(r, key) for r in rows if r["mode"] != "instant"]
            ratios = [x for x in ratios if math.isfinite(x)]
            if ratios:
                print(
                    f"median range-query ratio signalfire/{what}: {statistics.median(ratios):.2f}"
                    f" over {len(ratios)} range queries"
                )
        print(f"answers: {len(rows) - len(bad)} agree (incl. documented changes), {len(bad)} differ or fail")
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
