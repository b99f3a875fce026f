"""One generated data set for the benches: gen.py's series families, written as OpenMetrics.

The series families and values come from ``/work/shared/bench/sfbench/gen.py`` (imported
from ``../shared/bench`` next to the checkout), so every bench measures the same shapes
sfbench does: HTTP counters, latency histograms, node CPU counters, memory and filesystem
gauges, an info metric.

Two adjustments make the data fair between Prometheus 2.42 and signalfire (3.x semantics):

* No sample sits on a whole second. gen.py already spreads instances over the scrape
  interval; we also move the few timestamps that land on a multiple of 1000 ms by one ms.
  Queries are then issued at whole seconds, so no sample falls exactly on a step or window
  boundary, where 2.x (left-closed windows) and 3.x (left-open) disagree by design.
* ``le`` values are written in the float form Prometheus 3 normalises them to (``1.0``,
  ``10.0``), so 2.42, which does not normalise, stores the same label sets.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

# ``SIGNALFIRE_SHARED_DIR``, else ``shared/`` beside the checkout (or above it), else /work/shared.
_CANDIDATES = [Path(os.environ["SIGNALFIRE_SHARED_DIR"])] if os.environ.get("SIGNALFIRE_SHARED_DIR") else []
_CANDIDATES += [p / "shared" for p in Path(__file__).resolve().parents[1].parents] + [Path("/work/shared")]
_SHARED = next((c / "bench" for c in _CANDIDATES if (c / "bench").is_dir()), _CANDIDATES[0] / "bench")
if _SHARED.is_dir() and str(_SHARED) not in sys.path:
    sys.path.insert(0, str(_SHARED))

from sfbench.gen import Dataset, generate, steps_for  # noqa: E402

__all__ = ["Dataset", "dataset", "normalise_le", "openmetrics_lines", "write_openmetrics"]


def normalise_le(value: str) -> str:
    """The float form Prometheus 3 gives ``le`` values: ``1`` -> ``1.0``, ``+Inf`` stays."""
    try:
        f = float(value)
    except ValueError:
        return value
    if np.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    s = repr(f)
    return s


def dataset(series: int, hours: float, seed: int = 42, start_ms: int | None = None) -> Dataset:
    """gen.py's data set with timestamps off whole seconds and ``le`` values normalised."""
    ds = generate(series, steps_for(hours), seed=seed, start_ms=start_ms)
    on_second = ds.ts_inst % 1000 == 0
    ds.ts_inst = ds.ts_inst + on_second.astype(np.int64)  # 1 ms off; scrapes stay 15 s apart
    ds.labels = [[(n, normalise_le(v) if n == "le" else v) for n, v in ls] for ls in ds.labels]
    return ds


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _series_order(ds: Dataset) -> list[int]:
    """Series sorted by labels, so each metric family is written contiguously as OpenMetrics asks."""
    return sorted(range(ds.n_series), key=lambda s: ds.labels[s])


def openmetrics_lines(ds: Dataset, t_lo: int | None = None, t_hi: int | None = None) -> Iterator[str]:
    """Text blocks (one per series) of the samples with ``t_lo <= ts < t_hi``, without ``# EOF``.

    No ``# TYPE`` lines: every family is ``unknown``, which both Prometheus's and our parser
    take for any sample name, so counters, histogram parts and gauges need no special casing.
    Timestamps are seconds with millisecond decimals. The loop is over series; each
    iteration formats one series' samples.
    """
    lo = np.iinfo(np.int64).min if t_lo is None else t_lo
    hi = np.iinfo(np.int64).max if t_hi is None else t_hi
    # Per instance: the step range inside [lo, hi) and the timestamp strings, built once.
    inst_ts: list[tuple[int, int, list[str]]] = []
    for row in ds.ts_inst:
        a, b = int(np.searchsorted(row, lo)), int(np.searchsorted(row, hi))
        secs, ms = np.divmod(row[a:b], 1000)
        inst_ts.append((a, b, [f"{s}.{m:03d}" for s, m in zip(secs.tolist(), ms.tolist())]))
    for s in _series_order(ds):
        ls = ds.labels[s]
        name = next(v for n, v in ls if n == "__name__")
        body = ",".join(f'{n}="{_escape(v)}"' for n, v in ls if n != "__name__")
        prefix = f"{name}{{{body}}} " if body else f"{name} "
        a, b, ts_strs = inst_ts[int(ds.inst[s])]
        if a == b:
            continue
        vals = ds.values[s, a:b].tolist()
        yield "".join([f"{prefix}{v!r} {t}\n" for v, t in zip(vals, ts_strs)])


def write_openmetrics(
    ds: Dataset, path: str | os.PathLike[str], t_lo: int | None = None, t_hi: int | None = None
) -> int:
    """Write the samples in ``[t_lo, t_hi)`` as one OpenMetrics file; returns its size in bytes."""
    with open(path, "w", encoding="utf-8") as f:
        for block in openmetrics_lines(ds, t_lo, t_hi):
            f.write(block)
        f.write("# EOF\n")
    return os.path.getsize(path)


def samples_in(ds: Dataset, t_lo: int, t_hi: int) -> int:
    """How many samples fall in ``[t_lo, t_hi)``."""
    inside = (ds.ts_inst >= t_lo) & (ds.ts_inst < t_hi)
    per_inst = inside.sum(axis=1)
    return int(per_inst[ds.inst].sum())


if __name__ == "__main__":  # python bench/datagen.py SERIES HOURS OUT.om
    n, h, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    d = dataset(n, h)
    size = write_openmetrics(d, out)
    print(f"wrote {d.n_samples} samples of {d.n_series} series ({size / 1e6:.1f} MB) to {out}")
