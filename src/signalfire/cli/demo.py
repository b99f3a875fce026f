"""The default job: ``signalfire`` with no command loads a bundled sample and reports on it.

Until the server lands, running ``signalfire`` does real work end to end: it parses the
OpenMetrics file bundled in ``signalfire/data/sample.om`` (20 minutes of a node-exporter-like
target and an instrumented web app, two instances), shifts its timestamps so the history
ends now, appends it to the database in ``--storage.tsdb.path`` (``data/``), then prints
what was stored: series, samples, time range, a few series, and a PromQL query.

:func:`sample_text` generates the bundled file; a unit test checks the two agree.
"""

from __future__ import annotations

import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from signalfire.cli._format import go_float, go_time_utc
from signalfire.errors import SignalfireError

SAMPLE_NAME = "sample.om"
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0"
STEP_MS = 15_000
STEPS = 81  # 20 minutes at 15 s
SAMPLE_START_MS = 1_700_000_000_000
DEMO_QUERY = "sum by (instance) (rate(http_requests_total[5m]))"

_BUCKETS = ("0.05", "0.1", "0.25", "0.5", "1.0", "+Inf")
_CODES = (("GET", "200"), ("GET", "404"), ("POST", "200"), ("POST", "500"))
_MODES = (("idle", 0.8), ("system", 0.05), ("user", 0.15))


def sample_text(seed: int = 7) -> str:
    """The bundled OpenMetrics sample: deterministic, families grouped, timestamps in seconds.

    Loops here run over families, instances and steps to write text (this is a fixture
    generator, not a hot path); the values come from one seeded numpy generator.
    """
    rng = np.random.default_rng(seed)
    instances = ("app-1:8080", "app-2:8080")
    # Per instance: a small phase so scrapes are not on whole seconds, and a few ms of jitter.
    phase = rng.integers(100, 14_000, size=len(instances))
    ts = SAMPLE_START_MS + phase[:, None] + np.arange(STEPS)[None, :] * STEP_MS
    ts = ts + rng.integers(-3, 4, size=ts.shape)
    secs = [[f"{t // 1000}.{t % 1000:03d}" for t in row.tolist()] for row in ts]
    out: list[str] = []

    def base(i: int) -> str:
        return f'instance="{instances[i]}",job="demo"'

    out += ["# HELP http_requests Requests served.", "# TYPE http_requests counter"]
    for i in range(len(instances)):
        for method, code in _CODES:
            rate = {"200": 40.0, "404": 2.0, "500": 0.5}[code] * (1.5 if method == "GET" else 0.5)
            vals = np.cumsum(rng.poisson(rate * STEP_MS / 1000, size=STEPS)) + rng.integers(1000, 5000)
            lbl = f'code="{code}",{base(i)},method="{method}"'
            out += [f"http_requests_total{{{lbl}}} {v} {t}" for v, t in zip(vals.tolist(), secs[i])]

    out += [
        "# HELP http_request_duration_seconds Request latency.",
        "# TYPE http_request_duration_seconds histogram",
    ]
    for i in range(len(instances)):
        obs = rng.poisson(60, size=STEPS)
        shares = np.array([0.3, 0.55, 0.8, 0.93, 0.99, 1.0])
        cum_n = np.cumsum(obs)
        bucket_vals = np.floor(cum_n[:, None] * shares[None, :]).astype(np.int64)
        bucket_vals[:, -1] = cum_n
        sums = np.round(np.cumsum(obs * rng.uniform(0.08, 0.12, size=STEPS)), 3)
        for k in range(STEPS):  # one MetricPoint per step: buckets, count, sum at one timestamp
            t = secs[i][k]
            for le, v in zip(_BUCKETS, bucket_vals[k].tolist()):
                out.append(f'http_request_duration_seconds_bucket{{{base(i)},le="{le}"}} {v} {t}')
            out.append(f"http_request_duration_seconds_count{{{base(i)}}} {int(cum_n[k])} {t}")
            out.append(f"http_request_duration_seconds_sum{{{base(i)}}} {float(sums[k])!r} {t}")

    out += ["# HELP node_cpu_seconds Seconds the CPUs spent in each mode.", "# TYPE node_cpu_seconds counter"]
    for i in range(len(instances)):
        for cpu in ("0", "1"):
            for mode, share in _MODES:
                inc = np.round(share * STEP_MS / 1000 * rng.normal(1, 0.1, size=STEPS).clip(0.5, 1.5), 2)
                vals = np.round(rng.uniform(1e4, 1e5) + np.cumsum(inc), 2)
                lbl = f'cpu="{cpu}",{base(i)},mode="{mode}"'
                out += [f"node_cpu_seconds_total{{{lbl}}} {v!r} {t}" for v, t in zip(vals.tolist(), secs[i])]

    gauges = (
        ("node_memory_MemAvailable_bytes", "Memory available in bytes.", 4e9, 2e7, 4096),
        ("node_load1", "1m load average.", 0.8, 0.05, 0.01),
        ("process_resident_memory_bytes", "Resident memory size in bytes.", 2.5e8, 1e6, 4096),
    )
    for name, help_text, start, sigma, quantum in gauges:
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for i in range(len(instances)):
            walk = start + np.cumsum(rng.normal(0, sigma, size=STEPS))
            levels = np.round(np.round(np.clip(walk, quantum, None) / quantum) * quantum, 2)
            out += [f"{name}{{{base(i)}}} {float(v)!r} {t}" for v, t in zip(levels.tolist(), secs[i])]
    out += ["# HELP up Whether the target was up.", "# TYPE up gauge"]
    for i in range(len(instances)):
        out += [f"up{{{base(i)}}} 1 {t}" for t in secs[i]]
    out += ["# HELP app_build Build information.", "# TYPE app_build info"]
    for i in range(len(instances)):
        out += [f'app_build_info{{{base(i)},version="1.4.2"}} 1 {t}' for t in secs[i]]
    out.append("# EOF")
    return "\n".join(out) + "\n"


def bundled_sample() -> bytes:
    """The bytes of ``signalfire/data/sample.om`` as installed with the package."""
    return resources.files("signalfire").joinpath("data", SAMPLE_NAME).read_bytes()


def load_sample(db: Any, body: bytes, now_ms: int | None = None) -> dict[str, int]:
    """Parse ``body`` and append it with timestamps shifted so its newest sample is at ``now_ms``.

    Returns counts: ``appended`` and ``rejected`` (samples already stored by an earlier run
    land out of order or as duplicates and are counted, not raised), and the shift applied.
    """
    from signalfire.exposition import parse

    scrape = parse(body, OPENMETRICS_TYPE)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    ts = np.asarray(scrape.timestamps, np.int64)
    shift = (now_ms - int(ts.max())) // STEP_MS * STEP_MS if ts.size else 0
    # Appended in time order: within one step every series gets its sample, as a scrape would.
    order = np.argsort(ts, kind="stable")
    with db.appender() as app:
        refs = app.refs(scrape.labels)
        stats = app.append_batch(refs[order], ts[order] + shift, np.asarray(scrape.values)[order])
    return {"appended": stats.appended, "rejected": stats.rejected + stats.duplicate, "shift": shift}


def _summary(db: Any, out: TextIO, loaded: dict[str, int], path: Path) -> None:
    ss = db.select('{__name__=~".+"}')
    n = ss.num_samples
    print(f"signalfire: loaded the bundled sample into {path}/", file=out)
    print(f"  appended {loaded['appended']} samples ({loaded['rejected']} already stored)", file=out)
    print(f"  stored: {len(ss)} series, {n} samples", file=out)
    if n:
        lo, hi = int(ss.ts.min()), int(ss.ts.max())
        print(f"  time range: {go_time_utc(lo)} .. {go_time_utc(hi)} ({(hi - lo) / 60000:.1f} min)", file=out)
    print("  a few series (last value):", file=out)
    for i in range(0, len(ss), max(1, len(ss) // 5)):
        ls, _ts, vs = ss.series(i)
        if len(vs):
            print(f"    {ls} = {go_float(float(vs[-1]))}", file=out)
    if n:
        _query(db, out, int(ss.ts.max()))


def _query(db: Any, out: TextIO, at_ms: int) -> None:
    try:
        result = db.query(DEMO_QUERY, at_ms / 1000)
    except (ImportError, AttributeError, NotImplementedError) as err:
        print(f"  PromQL engine not available yet ({err.__class__.__name__}); skipped {DEMO_QUERY}", file=out)
        return
    print(f"  {DEMO_QUERY} at {go_time_utc(at_ms)}:", file=out)
    labels = getattr(result, "labels", None) or []
    values = np.asarray(getattr(result, "values", []))
    for i, ls in enumerate(labels):
        v = float(values[i, -1]) if values.ndim == 2 else float(values[i])
        print(f"    {ls} => {go_float(v)}", file=out)


def run_default(storage_path: str, sample_file: str | None = None, out: TextIO | None = None) -> int:
    """Load the sample (or ``sample_file``) into ``storage_path`` and print a summary."""
    import signalfire

    out = out or sys.stdout
    path = Path(storage_path.rstrip("/") or ".")
    try:
        body = Path(sample_file).read_bytes() if sample_file else bundled_sample()
        db = signalfire.open(path)
        try:
            loaded = load_sample(db, body)
            _summary(db, out, loaded, path)
        finally:
            db.close()
    except BrokenPipeError:
        raise  # the reader went away (`signalfire | head`); main() ends quietly
    except (SignalfireError, OSError) as err:
        print(f"signalfire: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # regenerate the bundled file: python -m signalfire.cli.demo PATH
    Path(sys.argv[1]).write_text(sample_text(), encoding="utf-8")
