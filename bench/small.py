"""Small-query bench: rule-sized instant and 5-minute range queries, and one rule round, beside Prometheus.

    python bench/small.py            # 1, 4 and 42 targets x 2 h at 15 s (~24, 100, 1,000 series a query)
    python bench/small.py --quick    # the same sizes x 30 min, fewer runs: about 2 minutes

The queries a running server issues most are small: every recording and alerting rule is
an instant query over tens of series. This bench measures that end (issue 16), where the
fixed cost of a query (parsing, planning, numpy calls on tiny arrays, reading the head)
dominates, rather than the large range queries of ``promql.py``.

For each size, one data set of gen.py's 100-series targets (``datagen.py``) is loaded into
both systems the way a running server holds recent samples: signalfire appends it and
does not compact, so every sample is in its head; Prometheus receives it by remote write
(``--web.enable-remote-write-receiver``), so its samples are in its head too (2 h or less
of data is below its head compaction threshold of 3 h). Sizes are counted in targets, as
gen.py's unit is a target of 100 series with 1 to 100 series per metric family; each row
prints how many series its selectors matched.

Rows: every query of ``shared/bench/queries.toml`` as an instant query at the end of the
data, and as a 5-minute range query at a 15 s step. signalfire's time is the mean of up to
``--runs`` warm runs in process; Prometheus's is its own engine time (``stats=all``'s
execTotalTime, no HTTP or JSON encoding), the median of ``--prom-runs``. Answers are
compared as ``promql.py`` compares them.

Rule round: every rule of ``bench/rules/*.yml`` (recording and alerting, in the style of
the kube-prometheus / node-exporter mixins). signalfire has no rule engine yet (issue 18),
so its round is each rule's expression evaluated as an instant query at one time, the mean
of ``--rule-rounds`` warm rounds. Prometheus's round is measured twice: its engine times
of the same expressions over the API summed, and after the rule files are loaded into the
running process (SIGHUP), ``prometheus_rule_group_last_duration_seconds`` summed over the
groups (its rule manager at wall-clock time, which writes the recorded series and alert
state too; in a second Prometheus loaded with the same samples, so the first stays as
loaded for the query rows).
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen
from _common import compare, load_queries, load_signalfire, prom_engine_ms, verdict
from _prom import Prometheus
from sfbench.gen import SERIES_PER_INSTANCE

RULES_DIR = Path(__file__).resolve().parent / "rules"
TARGETS = (1, 4, 42)  # 100-series targets: about 24, 100 and 1,000 series per typical selector
RANGE_S, RANGE_STEP_S = 300, 15


def rule_exprs(files: list[Path]) -> tuple[list[str], int, int, int]:
    """(every rule's expression in file order, recording rules, alerting rules, groups)."""
    import yaml  # PyYAML: only this bench reads YAML

    exprs, n_rec, n_alert, n_groups = [], 0, 0, 0
    for f in files:
        for group in yaml.safe_load(f.read_text())["groups"]:
            n_groups += 1
            for rule in group["rules"]:
                exprs.append(str(rule["expr"]))
                n_rec += "record" in rule
                n_alert += "alert" in rule
    return exprs, n_rec, n_alert, n_groups


def _selectors(expr: str) -> Iterator[str]:
    from signalfire.promql import ast, iter_children, parse_expr, to_string

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, ast.VectorSelector):
            yield to_string(node)
        for child in iter_children(node):
            yield from walk(child)

    return walk(parse_expr(expr))


def matched_series(prom: Prometheus, expr: str, t_s: int) -> int:
    """How many series the expression's selectors match at ``t_s`` (lookback included)."""
    total = 0
    for sel in set(_selectors(expr)):
        result = prom.query(f"count({sel})", t_s)[0]["result"]
        total += int(float(result[0]["value"][1])) if result else 0
    return total


def mean_ms(fn: Any, runs: int, budget_s: float = 2.0) -> tuple[Any, float]:
    """Mean milliseconds of up to ``runs`` runs of ``fn`` (fewer when they pass ``budget_s``),
    after one untimed run, so the time is warm as a rule's next round finds it."""
    out = fn()
    n, t0 = 0, time.perf_counter()
    while n < runs and (n == 0 or time.perf_counter() - t0 < budget_s):
        fn()
        n += 1
    return out, (time.perf_counter() - t0) / n * 1e3


def load_prometheus(prom: Prometheus, ds: datagen.Dataset) -> float:
    """Remote-write the data set into the running Prometheus (its head); returns seconds."""
    from sfbench.ingest import build_payloads, run_ingest

    payloads = build_payloads(ds, window_steps=1, samples_per_request=2000, shards=2)
    ing = run_ingest(prom.url + "/api/v1/write", prom.pid, payloads)
    if ing["samples_failed"]:
        raise RuntimeError(f"Prometheus refused {ing['samples_failed']} samples by remote write")
    return float(ing["wall_s"])


def run_row(db: Any, prom: Prometheus, q: dict[str, str], mode: str, end_s: int, args: Any) -> dict[str, Any]:
    expr = q["expr"]
    if mode == "instant":
        start = end = end_s
        pdata, p_ms = prom_engine_ms(prom, expr, "instant", end, end, 0, args.prom_runs)
        run = lambda: db.query(expr, end_s)  # noqa: E731
    else:
        end = end_s // RANGE_STEP_S * RANGE_STEP_S
        start = end - RANGE_S
        pdata, p_ms = prom_engine_ms(prom, expr, "range", start, end, RANGE_STEP_S, args.prom_runs)
        run = lambda: db.query_range(expr, start, end, RANGE_STEP_S)  # noqa: E731
    row = {"name": q["name"], "mode": mode, "prom_ms": p_ms, "sf_ms": math.nan}
    row["matched"] = matched_series(prom, expr, end)
    try:
        sres, row["sf_ms"] = mean_ms(run, args.runs)
    except Exception as err:  # a failing query is a row, not the end of the bench
        return {**row, "verdict": f"ERROR in signalfire {err.__class__.__name__}: {str(err)[:80]}"}
    return {**row, "verdict": verdict(expr, pdata, sres.to_json())}


def rule_round(db: Any, prom: Prometheus, exprs: list[str], end_s: int, args: Any) -> dict[str, Any]:
    """signalfire's round (mean of warm rounds), Prometheus's engine-time sum and mismatches."""
    answers = [db.query(e, end_s).to_json() for e in exprs]  # the warm-up round
    t0 = time.perf_counter()
    for _ in range(args.rule_rounds):
        for e in exprs:
            db.query(e, end_s)
    sf_ms = (time.perf_counter() - t0) / args.rule_rounds * 1e3
    prom_ms, bad = 0.0, []
    for e, sans in zip(exprs, answers):
        pdata, ms = prom_engine_ms(prom, e, "instant", end_s, end_s, 0, args.prom_runs)
        prom_ms += ms
        why = compare(pdata, sans)
        if why:
            bad.append(f"{e.splitlines()[0][:70]}: {why}")
    return {"sf_ms": sf_ms, "prom_engine_ms": prom_ms, "bad": bad}


def prom_rule_groups(
    prom: Prometheus, files: list[Path], n_groups: int, reads: int, interval_s: int
) -> tuple[float, float]:
    """Load the rule files into Prometheus, wait for two rounds of every group, then
    ``prometheus_rule_group_last_duration_seconds`` summed over groups: the median over
    ``reads`` rounds, in ms, and seconds from the newest sample to the last evaluation."""
    prom.use_rules(files, interval_s)
    deadline = time.monotonic() + 10 * interval_s
    while True:
        done = prom.metric_samples("prometheus_rule_group_iterations_total")
        if len(done) >= n_groups and min(done) >= 2:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("Prometheus's rule groups did not run twice in time")
        time.sleep(0.5)
    sums = []
    for i in range(reads):
        if i:
            time.sleep(interval_s)
        sums.append(prom.metric_sum("prometheus_rule_group_last_duration_seconds") * 1e3)
    last_eval = max(prom.metric_samples("prometheus_rule_group_last_evaluation_timestamp_seconds"))
    return statistics.median(sums), last_eval


def _ratio(row: dict[str, Any]) -> float:
    return row["sf_ms"] / row["prom_ms"] if row["prom_ms"] > 0 else math.nan


def run_size(targets: int, args: Any, out: Path, queries: list[dict[str, str]]) -> list[dict[str, Any]]:
    # The newest samples a minute ahead of the clock: Prometheus's rule manager (below)
    # evaluates at wall-clock time after the load, and must find them inside its lookback.
    span_ms = int(args.hours * 3_600_000)
    start_ms = (int(time.time() * 1000) - span_ms + 60_000) // 15_000 * 15_000
    ds = datagen.dataset(targets * SERIES_PER_INSTANCE, args.hours, start_ms=start_ms)
    end_s = ds.max_ts // 1000
    folder = out / f"t{targets}"
    rule_files = sorted(RULES_DIR.glob("*.yml"))
    exprs, n_rec, n_alert, groups = rule_exprs(rule_files)
    rows: list[dict[str, Any]] = []
    # Prometheus's rule manager evaluates at wall-clock time and writes recorded series and
    # alert state into the head: it runs in a process of its own, right after the load (so
    # the newest samples are inside the lookback window), and stops before any timing.
    with Prometheus(folder / "prom-rules", "--web.enable-remote-write-receiver") as prom:
        load_prometheus(prom, ds)
        g_ms, last_eval = prom_rule_groups(prom, rule_files, groups, args.rule_rounds, args.rule_interval)
    with Prometheus(folder / "prom", "--web.enable-remote-write-receiver") as prom:
        p_load = load_prometheus(prom, ds)
        db, sf_load = load_signalfire(ds, folder / "sf", compact=False)
        try:
            print(
                f"\n== {targets} target(s): {ds.n_series:,} series x {ds.n_steps} steps; both hold them in "
                f"the head (Prometheus by remote write {p_load:.1f}s, signalfire append {sf_load:.1f}s)",
                flush=True,
            )
            head = f"{'query':<24}{'mode':>8}{'series':>8}{'Prom eval ms':>13}{'signalfire ms':>14}"
            print(f"{head}{'sf/eval':>9}")
            for q in queries:
                for mode in ("instant", "5m"):
                    if mode != "instant" and prom.query(q["expr"], end_s)[0]["resultType"] == "matrix":
                        break  # a range-vector expression has no range-query form
                    r = {"targets": targets, **run_row(db, prom, q, mode, end_s, args)}
                    rows.append(r)
                    print(
                        f"{r['name']:<24}{mode:>8}{r['matched']:>8}{r['prom_ms']:>13.3f}{r['sf_ms']:>14.3f}"
                        f"{_ratio(r):>9.2f}  {r['verdict']}",
                        flush=True,
                    )
            rr = rule_round(db, prom, exprs, end_s, args)
        finally:
            db.close()
    sf_ms, p_ms = rr["sf_ms"], rr["prom_engine_ms"]
    print(
        f"rule round ({n_rec} recording + {n_alert} alerting rules, {groups} groups):\n"
        f"  signalfire {sf_ms:.1f} ms (each expr an instant query, mean of {args.rule_rounds} warm rounds)\n"
        f"  Prometheus engine-time sum {p_ms:.1f} ms (sf/eval {sf_ms / p_ms:.2f})\n"
        f"  Prometheus rule groups' last_duration sum {g_ms:.1f} ms (sf/groups {sf_ms / g_ms:.2f}; "
        f"its last round at {last_eval - ds.max_ts / 1000:+.0f} s from the newest sample)"
    )
    print(f"rule answers: {len(exprs) - len(rr['bad'])} agree, {len(rr['bad'])} differ")
    for line in rr["bad"][:10]:
        print(f"  DIFFERENT {line}")
    rows.append({"targets": targets, "rules": rr, "groups_ms": g_ms})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", default=",".join(map(str, TARGETS)), help="sizes, in 100-series targets")
    ap.add_argument(
        "--hours", type=float, default=2.0, help="data appended (at most 2: both keep it in the head)"
    )
    ap.add_argument("--runs", type=int, default=200, help="signalfire runs per row (fewer past 2 s)")
    ap.add_argument("--prom-runs", type=int, default=11, help="Prometheus runs per row (median)")
    ap.add_argument("--rule-rounds", type=int, default=5)
    ap.add_argument("--rule-interval", type=int, default=15, help="Prometheus's group interval, seconds")
    ap.add_argument("--quick", action="store_true", help="30 min of data, 30 / 3 runs, 2 rule rounds at 5 s")
    args = ap.parse_args(argv)
    if args.quick:
        args.hours, args.runs, args.prom_runs, args.rule_rounds, args.rule_interval = 0.5, 30, 3, 2, 5
    out = Path(tempfile.mkdtemp(prefix="sf-small-bench-"))
    queries = load_queries()
    rows: list[dict[str, Any]] = []
    try:
        for targets in (int(t) for t in args.targets.split(",")):
            rows += run_size(targets, args, out, queries)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print("\nmedian ratio signalfire / Prometheus engine time (rows that ran), per size:")
    for targets in dict.fromkeys(r["targets"] for r in rows):
        line = [f"  {targets:>3} target(s)"]
        for mode in ("instant", "5m"):
            mine = [r for r in rows if r["targets"] == targets and r.get("mode") == mode]
            ratios = [x for x in map(_ratio, mine) if math.isfinite(x)]
            matched = statistics.median(r["matched"] for r in mine) if mine else 0
            if ratios:
                med, worst = statistics.median(ratios), max(ratios)
                line.append(f"{mode} {med:.2f} (worst {worst:.2f}, median {matched:g} series)")
        rr = next(r for r in rows if r["targets"] == targets and "rules" in r)
        line.append(
            f"rules sf/eval {rr['rules']['sf_ms'] / rr['rules']['prom_engine_ms']:.2f}, "
            f"sf/groups {rr['rules']['sf_ms'] / rr['groups_ms']:.2f}"
        )
        print("; ".join(line))
    bad = [r for r in rows if str(r.get("verdict", "")).startswith(("DIFFERENT", "ERROR"))]
    print(f"query answers: {sum('verdict' in r for r in rows) - len(bad)} agree, {len(bad)} differ or fail")
    return 0


if __name__ == "__main__":
    sys.exit(main())
