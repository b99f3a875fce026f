"""Range-kernel bench: every ``*_over_time``/``rate`` kernel over S series × T steps at once.

    python bench/range_kernels.py                 # 2,000 series x 24 h at 60 s, 1 h windows, 5 m step
    python bench/range_kernels.py --series 200    # smaller

Calls the range kernels (``signalfire.promql.range_functions``, ``counter_functions``,
``trend_functions``) directly on a RangeWindows
(no storage, no parser), so the figures are the vectorised kernels alone: milliseconds
per call (median of 3) and window samples processed per second. Data: counters with
jittered increments and an occasional reset, timestamps off whole seconds. Printed only,
never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from signalfire.labels import Labels
from signalfire.promql import counter_functions as cf
from signalfire.promql import range_functions as rf
from signalfire.promql import trend_functions as tf
from signalfire.promql.values import RangeWindows
from signalfire.util.ragged import window_bounds


def make_windows(S: int, hours: int, scrape_s: int, range_s: int, step_s: int) -> RangeWindows:
    rng = np.random.default_rng(7)
    N = hours * 3600 // scrape_s
    base = np.arange(N, dtype=np.int64) * scrape_s * 1000
    ts = (base[None, :] + rng.integers(0, 900, (S, 1))).ravel()
    incs = rng.random((S, N)) * 10
    vals = np.cumsum(incs, axis=1)
    resets = rng.random((S, N)) < 0.001
    vals = np.where(np.cumsum(resets, axis=1) % 2 == 1, vals * 0.5, vals).ravel()
    offsets = np.arange(S + 1, dtype=np.int64) * N
    eval_ts = np.arange(range_s * 1000, N * scrape_s * 1000, step_s * 1000, dtype=np.int64)
    lo, hi = window_bounds(offsets, ts, eval_ts, range_s * 1000)
    labels = [Labels.from_strings("__name__", "x_total", "i", str(i)) for i in range(S)]
    return RangeWindows(labels, offsets, ts, vals, lo, hi, eval_ts, range_s * 1000)


def kernels(w: RangeWindows) -> dict[str, Callable[[], object]]:
    T = len(w.eval_ts)
    return {
        "rate": lambda: cf.extrapolated_rate(w, True, True),
        "increase": lambda: cf.extrapolated_rate(w, True, False),
        "delta": lambda: cf.extrapolated_rate(w, False, False),
        "irate": lambda: cf.instant_value(w, True),
        "changes": lambda: cf.changes(w),
        "resets": lambda: cf.resets(w),
        "count_over_time": lambda: rf.count_over_time(w),
        "sum_over_time": lambda: rf.sum_over_time(w),
        "avg_over_time": lambda: rf.avg_over_time(w),
        "min_over_time": lambda: rf.min_over_time(w),
        "max_over_time": lambda: rf.max_over_time(w),
        "last_over_time": lambda: rf.last_over_time(w),
        "ts_of_max_over_time": lambda: rf.ts_of_max_over_time(w),
        "stddev_over_time": lambda: rf.stddev_over_time(w),
        "quantile_over_time": lambda: rf.quantile_over_time(w, np.full(T, 0.9)),
        "mad_over_time": lambda: rf.mad_over_time(w),
        "deriv": lambda: tf.deriv(w),
        "predict_linear": lambda: tf.predict_linear(w, w.eval_ts, np.full(T, 3600.0)),
        "double_exponential_smoothing": lambda: tf.double_exponential_smoothing(
            w, np.full(T, 0.3), np.full(T, 0.3)
        ),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--scrape", type=int, default=60, help="scrape interval, s")
    ap.add_argument("--range", type=int, default=3600, help="window, s")
    ap.add_argument("--step", type=int, default=300, help="query step, s")
    args = ap.parse_args(argv)
    w = make_windows(args.series, args.hours, args.scrape, args.range, args.step)
    pairs = int((w.hi - w.lo).sum())
    print(f"S={w.num_series} T={len(w.eval_ts)} samples={len(w.ts):,} window samples={pairs:,}")
    print(f"{'kernel':30s} {'ms':>9s} {'Msamples/s':>11s}")
    for name, fn in kernels(w).items():
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        print(f"{name:30s} {med * 1000:9.1f} {pairs / med / 1e6:11.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
