"""Evaluation-time limits hold for any range query, however extreme its steps and ranges.

Random range queries (steps from 1 ms to years, spans up to the int64 range, range
selectors and subquery resolutions at both ends) under a small ``max_samples`` and
``max_steps`` either answer or raise TooManySamplesError / TooManyStepsError: never a
MemoryError, an OverflowError or another Python error, and never after allocating much
more than the limits allow (tracemalloc peak, which numpy reports to).
"""

from __future__ import annotations

import contextlib
import sys
import tracemalloc
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "promql"))
from memstore import MemStore

from signalfire.errors import TooManySamplesError, TooManyStepsError
from signalfire.labels import Labels
from signalfire.promql import Engine, EngineOptions

H = 3_600_000
MAX_SAMPLES = 10_000
MAX_STEPS = 100_000
#: Far above what the limits allow to be held (dense cells, steps, the small selection),
#: far below what the same queries took without them (gigabytes to terabytes).
PEAK_BYTES = 48 << 20

_STORE = MemStore()
_TS = np.arange(0, 6 * H + 1, 15_000, dtype=np.int64)
for _i in range(5):
    _STORE.data[Labels.from_dict({"__name__": "x", "i": str(_i)})] = (_TS, np.arange(len(_TS), dtype=float))

DURATIONS = ["1ms", "1s", "15s", "5m", "6h", "30d", "10y", "292y"]
TEMPLATES = [
    "x",
    "sum by (i) (x)",
    "vector(1)",
    "time()",
    "rate(x[{r}])",
    "count_over_time(x[{r}])",
    "sum_over_time(x[{r}:{s}])",
    "max_over_time(rate(x[{r}])[{r2}:{s}])",
    "avg_over_time(vector(1)[{r}:{s}])",
    "x offset {r}",
    "x @ 21600",
    'count_values("v", x)',
    "quantile_over_time(0.5, x[{r}:{s}])",
]
STEPS = [1, 7, 1_000, 15_000, 60_000, H, 10**9, 10**12, 2**40]
SPANS = [0, 1, 1_000, H, 6 * H, 10**9, 10**12, 2**62]
STARTS = [0, 6 * H, -(10**12), 10**12, -(2**62), 2**62 - 10**12]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(TEMPLATES),
    st.sampled_from(DURATIONS),
    st.sampled_from(DURATIONS),
    st.sampled_from(DURATIONS),
    st.sampled_from(STARTS),
    st.sampled_from(SPANS),
    st.sampled_from(STEPS),
)
def test_extreme_range_queries_stay_within_limits(template, r, r2, s, start, span, step):
    expr = template.format(r=r, r2=r2, s=s)
    eng = Engine(EngineOptions(max_samples=MAX_SAMPLES, max_steps=MAX_STEPS, timeout_s=30))
    end = min(start + span, 2**63 - 1)
    tracemalloc.start()
    try:
        with contextlib.suppress(TooManySamplesError, TooManyStepsError):
            eng.range_query(_STORE, expr, start, end, step)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BYTES, f"{expr} over [{start}, {end}] step {step}: peak {peak / 2**20:.1f} MiB"
