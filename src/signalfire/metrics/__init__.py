"""Self metrics: a :class:`Registry` of counters, gauges, histograms and collectors.

Each component takes a registry (never a global one) and registers its ``signalfire_*``
metrics in it; :meth:`Registry.render` writes them in the text format or OpenMetrics
through :mod:`signalfire.exposition.write`. See ``docs/self-metrics.md``.
"""

from signalfire.metrics.registry import (
    COUNTER,
    DEFAULT_BUCKETS,
    GAUGE,
    HISTOGRAM,
    CollectedValues,
    Counter,
    CounterChild,
    Gauge,
    GaugeChild,
    Histogram,
    HistogramChild,
    MetricDesc,
    Registry,
    exponential_buckets,
)

__all__ = [
    "COUNTER",
    "DEFAULT_BUCKETS",
    "GAUGE",
    "HISTOGRAM",
    "CollectedValues",
    "Counter",
    "CounterChild",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
    "MetricDesc",
    "Registry",
    "exponential_buckets",
]
