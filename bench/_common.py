"""What the PromQL benches share: the query list, loading signalfire, timing, comparing answers.

``promql.py`` (large range queries over backfilled blocks) and ``small.py`` (rule-sized
queries over the head) time both systems the same way and compare their answers with the
same tolerance; the pieces live here so the two cannot drift apart.
"""

from __future__ import annotations

import math
import re
import statistics
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen
from _prom import Prometheus

QUERIES = Path(datagen._SHARED) / "queries.toml"
REPEAT = 3
DOC_CHANGES = {
    "subquery": "3.0: range and subquery windows are left-open; 2.x includes the sample at t-range",
}
_SUBQUERY = re.compile(r"\[[^\]]*:[^\]]*\]")


def load_queries() -> list[dict[str, str]]:
    return tomllib.loads(QUERIES.read_text())["query"]


def open_signalfire(folder: Path) -> Any:
    import signalfire

    # The same sample limit as Prometheus gets (--query.max-samples in _prom.py); the
    # allocator tuned as a server would tune it (util/malloc.py), as the process is ours.
    return signalfire.open(  # type: ignore[attr-defined]
        folder, retention_ms=0, max_samples=500_000_000, keep_freed_memory=True
    )


def load_signalfire(ds: datagen.Dataset, folder: Path, compact: bool = True) -> tuple[Any, float]:
    """Append the data set in scrape order (10 minutes of scrapes per batch); with
    ``compact`` persist it into blocks, else leave it in the head where a running server's
    recent samples are. Returns (database, seconds)."""
    from signalfire.labels import Labels

    db = open_signalfire(folder)
    t0 = time.perf_counter()
    with db.appender() as app:
        refs = np.asarray(app.refs([Labels.from_pairs(ls) for ls in ds.labels]), np.int64)
    ts_all = ds.ts(0, ds.n_series, 0, ds.n_steps)
    step_block = 40  # 10 minutes of scrapes per batch, series-major
    for t0_ in range(0, ds.n_steps, step_block):
        t1_ = min(ds.n_steps, t0_ + step_block)
        with db.appender() as app:
            app.append_batch(
                np.repeat(refs, t1_ - t0_),
                np.ascontiguousarray(ts_all[:, t0_:t1_]).ravel(),
                np.ascontiguousarray(ds.values[:, t0_:t1_]).ravel(),
            )
    if compact:
        db.compact()
    return db, time.perf_counter() - t0


def _key(metric: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(metric.items()))


def _points(data: dict[str, Any]) -> dict[tuple[tuple[str, str], ...], dict[float, float]]:
    """Prometheus-shaped JSON data -> {labels: {t: value}}."""
    rt, result = data["resultType"], data["result"]
    if rt == "scalar":
        return {(): {float(result[0]): float(result[1])}}
    out: dict[tuple[tuple[str, str], ...], dict[float, float]] = {}
    for r in result:
        pts = r.get("values") or [r["value"]]
        out[_key(r["metric"])] = {float(t): float(v) for t, v in pts}
    return out


def compare(a: dict[str, Any], b: dict[str, Any], rel: float = 1e-6) -> str:
    """'' when both answers agree within ``rel``, else a short reason."""
    pa, pb = _points(a), _points(b)
    if pa.keys() != pb.keys():
        only_a, only_b = len(pa.keys() - pb.keys()), len(pb.keys() - pa.keys())
        return f"series differ ({only_a} only in Prometheus, {only_b} only in signalfire)"
    for k, sa in pa.items():
        sb = pb[k]
        if sa.keys() != sb.keys():
            return f"timestamps differ for {dict(k)}"
        for t, va in sa.items():
            vb = sb[t]
            if math.isnan(va) and math.isnan(vb):
                continue
            if not math.isclose(va, vb, rel_tol=rel, abs_tol=1e-9):
                return f"value differs for {dict(k)} at {t}: {va} vs {vb}"
    return ""


def verdict(expr: str, prom_data: dict[str, Any], sf_data: dict[str, Any]) -> str:
    """'ok', or why the answers differ; a subquery's inner steps land on its window start,
    where 2.x and 3.x differ by design, so its disagreement is that documented change."""
    why = compare(prom_data, sf_data)
    if not why:
        return "ok"
    if _SUBQUERY.search(expr):
        return f"documented change ({DOC_CHANGES['subquery']}): {why}"
    return f"DIFFERENT: {why}"


def median_time(fn: Any) -> tuple[Any, float]:
    """Median wall time of up to REPEAT runs of ``fn``; one run when it takes more than 2 s."""
    return median_timed(lambda: _timed(fn))


def _timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def median_timed(fn: Any) -> tuple[Any, float]:
    """Like :func:`median_time` for an ``fn`` that returns ``(result, seconds)`` itself.

    One untimed run first, so both systems are measured warm (blocks read and decoded once,
    as a dashboard's refresh finds them): otherwise a query over data no earlier query
    touched would time its first read, and its only run when that takes over 2 s."""
    fn()
    times, out = [], None
    for _ in range(REPEAT):
        out, took = fn()
        times.append(took)
        if took > 2.0:
            break
    return out, statistics.median(times)


def prom_engine_ms(
    prom: Prometheus, expr: str, mode: str, start: int, end: int, step: int, repeat: int = REPEAT
) -> tuple[dict[str, Any], float]:
    """Prometheus's own engine time (``stats=all``: execTotalTime, queue plus evaluation,
    without JSON encoding and HTTP), the like of signalfire's in-process time: the median
    of ``repeat`` runs, with the answer of the last (the ``stats`` key removed)."""
    times, data = [], {}
    for _ in range(repeat):
        if mode == "instant":
            data = prom.query(expr, end, stats=True)[0]
        else:
            data = prom.query_range(expr, start, end, step, stats=True)[0]
        times.append(float(data.pop("stats")["timings"]["execTotalTime"]) * 1e3)
    return data, statistics.median(times)
