"""Self metrics: counters, gauges and histograms in a registry handed to each component.

Every component with figures worth scraping (the tsdb today; scrape, rules, notifier,
remote and the HTTP server next) takes a :class:`Registry` and registers its
``signalfire_*`` metrics in it, as Prometheus hands one ``Registerer`` to ``tsdb.Open``
and ``scrape.NewManager``. Nothing here is global: two ``signalfire.open()`` databases
in one process each have their own registry, and a server passes one to all its parts.

A metric is fed one of two ways:

- an *instrument* (:class:`Counter`, :class:`Gauge`, :class:`Histogram`) that code
  updates when something happens. Components update them at batch boundaries (a commit,
  a compaction, a scrape), never per sample, so a lock and an add per update is cheap;
- a *collector* (:meth:`Registry.collector`, :meth:`Registry.gauge_func`), a callback
  read at scrape time for values a component already holds (series in the head, blocks
  loaded), so no gauge is kept in sync by hand and none goes stale.

Rendering goes through :mod:`signalfire.exposition.write` (text format 0.0.4 or
OpenMetrics 1.0), families sorted by name and series by label values, as client_golang
orders its output.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from signalfire.errors import BadDataError
from signalfire.exposition.write import MetricFamily, Sample, write_openmetrics, write_text
from signalfire.labels import METRIC_NAME, Labels, is_legacy_label_name, is_legacy_metric_name
from signalfire.util.gofmt import format_go_g, format_om_float

COUNTER = "counter"
GAUGE = "gauge"
HISTOGRAM = "histogram"

#: client_golang's ``DefBuckets``: latencies in seconds, 5 ms to 10 s.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_NO_LABELS = Labels(())

#: Name endings a family's own samples use, so no other family may be called so.
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count", "_created")


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """``count`` upper bounds ``start, start*factor, ...`` (client_golang's ``ExponentialBuckets``)."""
    if count < 1 or start <= 0 or factor <= 1:
        raise BadDataError(
            f"exponential buckets need count >= 1, start > 0, factor > 1; got {count}, {start}, {factor}"
        )
    return tuple(start * factor**i for i in range(count))


@dataclass(frozen=True, slots=True)
class MetricDesc:
    """What a metric is, independent of its values: what docs list and scrapes render.

    ``labelnames`` are the variable labels; ``const_labels`` are on every series of the
    family (as client_golang's ``ConstLabels``); ``buckets`` are a histogram's finite
    upper bounds (``+Inf`` is implied).
    """

    name: str
    type: str
    help: str
    labelnames: tuple[str, ...] = ()
    const_labels: Labels = _NO_LABELS
    buckets: tuple[float, ...] = ()

    def sample_names(self) -> tuple[str, ...]:
        """Every name the family claims, in either format, so two families cannot clash."""
        if self.type == COUNTER:
            base = self.name.removesuffix("_total")
            return (base, self.name, base + "_created")
        if self.type == HISTOGRAM:
            return (self.name, *(self.name + s for s in _HISTOGRAM_SUFFIXES))
        return (self.name,)


def _desc(
    name: str,
    typ: str,
    help: str,
    labelnames: Iterable[str],
    const_labels: Mapping[str, str] | None,
    buckets: tuple[float, ...] = (),
) -> MetricDesc:
    """Validate a metric's description: legacy names (no quoting needed anywhere), the
    suffix conventions promtool's lint checks, distinct labels not reserved for Prometheus."""
    what = f"register metric {name!r}"
    if not is_legacy_metric_name(name):
        raise BadDataError(f"{what}: name must match [a-zA-Z_:][a-zA-Z0-9_:]*")
    if not help:
        raise BadDataError(f"{what}: help text must not be empty")
    if typ == COUNTER and (not name.endswith("_total") or name == "_total"):
        raise BadDataError(f"{what}: a counter's name ends with _total")
    if typ != COUNTER and name.endswith("_total"):
        raise BadDataError(f"{what}: only a counter's name ends with _total")
    if typ == HISTOGRAM and name.endswith(_HISTOGRAM_SUFFIXES):
        raise BadDataError(f"{what}: a histogram's name must not end with {'/'.join(_HISTOGRAM_SUFFIXES)}")
    names = tuple(labelnames)
    consts = dict(const_labels or {})
    for label in (*names, *consts):
        if not is_legacy_label_name(label) or label.startswith("__"):
            raise BadDataError(
                f"{what}: label name {label!r} must match [a-zA-Z_][a-zA-Z0-9_]*, no leading __"
            )
        if typ == HISTOGRAM and label == "le":
            raise BadDataError(f"{what}: label name 'le' is reserved for histogram buckets")
    if len(set(names) | set(consts)) != len(names) + len(consts):
        raise BadDataError(f"{what}: label names must be distinct, got {[*names, *consts]}")
    return MetricDesc(name, typ, help, names, Labels.from_dict(consts), buckets)


# ---------------------------------------------------------------------- children


#: One series of a family as the registry renders it: name suffix, label pairs, value.
_Row = tuple[str, tuple[tuple[str, str], ...], float]


class CounterChild:
    """One series of a counter: a float that only goes up."""

    __slots__ = ("_lock", "_value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (>= 0; a counter never goes down)."""
        if not amount >= 0:  # also rejects NaN
            raise BadDataError(f"counter increment must be >= 0, got {amount}")
        with self._lock:
            self._value += amount

    @property
    def value(self) -> float:
        return self._value

    def rows(self, pairs: tuple[tuple[str, str], ...], openmetrics: bool) -> list[_Row]:
        return [("", pairs, self._value)]


class GaugeChild:
    """One series of a gauge: a float set, raised or lowered."""

    __slots__ = ("_lock", "_value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0.0

    def set(self, value: float) -> None:
        self._value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        with self._lock:
            self._value += amount

    def dec(self, amount: float = 1.0) -> None:
        with self._lock:
            self._value -= amount

    @property
    def value(self) -> float:
        return self._value

    def rows(self, pairs: tuple[tuple[str, str], ...], openmetrics: bool) -> list[_Row]:
        return [("", pairs, self._value)]


class HistogramChild:
    """One series of a histogram: per-bucket counts (kept non-cumulative, rendered
    cumulative), the sum and the count of observations.

    A NaN observation counts in the ``+Inf`` bucket only and makes the sum NaN, as in
    client_golang (``sort.SearchFloat64s`` places NaN past every bound).
    """

    __slots__ = ("_bounds", "_counts", "_lock", "_sum", "_upper")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self._lock = threading.Lock()
        self._upper = (*buckets, math.inf)
        self._bounds = np.array(self._upper, dtype=np.float64)
        self._counts = np.zeros(len(self._upper), dtype=np.int64)
        self._sum = 0.0

    def observe(self, value: float) -> None:
        i = len(self._upper) - 1 if math.isnan(value) else bisect_left(self._upper, value)
        with self._lock:
            self._counts[i] += 1
            self._sum += value

    def observe_many(self, values: npt.ArrayLike) -> None:
        """Observe a whole batch at once (one ``searchsorted`` and one ``bincount``)."""
        v = np.asarray(values, dtype=np.float64).ravel()
        if not v.size:
            return
        # ``le`` buckets hold v <= bound: the first bound >= v. NaN sorts past +Inf.
        idx = np.minimum(np.searchsorted(self._bounds, v, side="left"), len(self._upper) - 1)
        add = np.bincount(idx, minlength=len(self._upper))
        with np.errstate(over="ignore", invalid="ignore"):  # inf/NaN sums are the answer
            total = float(v.sum())
        with self._lock:
            self._counts += add
            self._sum += total

    def snapshot(self) -> tuple[list[int], float]:
        """Cumulative counts per bucket (the last is the count) and the sum, read together."""
        with self._lock:
            return np.cumsum(self._counts).tolist(), self._sum

    @property
    def count(self) -> int:
        return int(self._counts.sum())

    @property
    def sum(self) -> float:
        return self._sum

    def rows(self, pairs: tuple[tuple[str, str], ...], openmetrics: bool) -> list[_Row]:
        """Cumulative ``_bucket`` series (``le`` in the format's float spelling), ``_sum``
        and ``_count``. OpenMetrics forbids a sum beside negative bounds (it would not be
        a counter) and a count without a sum, so such a histogram gives buckets only there.
        (With bounds >= 0, a negative or NaN observation still makes an OpenMetrics sum
        that strict parsers refuse; observe sizes and durations, or use negative bounds.)"""
        fmt = format_om_float if openmetrics else format_go_g
        counts, total = self.snapshot()
        buckets = zip(self._upper, counts, strict=True)
        out: list[_Row] = [("_bucket", (*pairs, ("le", fmt(b))), float(n)) for b, n in buckets]
        if not (openmetrics and self._upper[0] < 0):
            out.append(("_sum", pairs, total))
            out.append(("_count", pairs, float(counts[-1])))
        return out


C = TypeVar("C", bound=CounterChild | GaugeChild | HistogramChild)


class _Metric(Generic[C]):
    """A registered family of children, one per combination of label values."""

    def __init__(self, desc: MetricDesc, make: Callable[[], C]) -> None:
        self.desc = desc
        self._make: Callable[[], C] = make
        self._lock = threading.Lock()
        self._children: dict[tuple[str, ...], C] = {}
        if not desc.labelnames:
            self._children[()] = make()

    def labels(self, *values: str, **by_name: str) -> C:
        """The child for these label values (created on first use), given in
        ``labelnames`` order or by name. Keep the child to update it cheaply."""
        names = self.desc.labelnames
        if by_name:
            if values or set(by_name) != set(names):
                raise BadDataError(f"metric {self.desc.name}: labels {sorted(by_name)} are not {list(names)}")
            values = tuple(by_name[n] for n in names)
        if len(values) != len(names):
            raise BadDataError(f"metric {self.desc.name}: {len(values)} label values for {list(names)}")
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            with self._lock:
                child = self._children.setdefault(key, self._make())
        return child

    def remove(self, *values: str) -> None:
        """Forget the series with these label values (a target or a rule group gone)."""
        with self._lock:
            self._children.pop(tuple(str(v) for v in values), None)

    def _only(self) -> C:
        if self.desc.labelnames:
            names = list(self.desc.labelnames)
            raise BadDataError(f"metric {self.desc.name} has labels {names}: use labels(...)")
        return self._children[()]

    def _items(self) -> list[tuple[tuple[tuple[str, str], ...], C]]:
        with self._lock:
            items = sorted(self._children.items(), key=lambda kc: kc[0])
        return [(tuple(zip(self.desc.labelnames, k, strict=True)), c) for k, c in items]

    def rows(self, openmetrics: bool) -> list[_Row]:
        return [row for pairs, child in self._items() for row in child.rows(pairs, openmetrics)]


class Counter(_Metric[CounterChild]):
    """A counter family; ``inc`` and ``value`` act on the series of a family without labels."""

    def inc(self, amount: float = 1.0) -> None:
        self._only().inc(amount)

    @property
    def value(self) -> float:
        return self._only().value


class Gauge(_Metric[GaugeChild]):
    """A gauge family; ``set``/``inc``/``dec``/``value`` act on a family without labels."""

    def set(self, value: float) -> None:
        self._only().set(value)

    def inc(self, amount: float = 1.0) -> None:
        self._only().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        self._only().dec(amount)

    @property
    def value(self) -> float:
        return self._only().value


class Histogram(_Metric[HistogramChild]):
    """A histogram family; ``observe``/``observe_many`` act on a family without labels."""

    def observe(self, value: float) -> None:
        self._only().observe(value)

    def observe_many(self, values: npt.ArrayLike) -> None:
        self._only().observe_many(values)

    @property
    def count(self) -> int:
        return self._only().count

    @property
    def sum(self) -> float:
        return self._only().sum


#: What a collector callback returns: per metric name, the value of a family without
#: labels, or label values (in ``labelnames`` order) -> value for a family with labels.
CollectedValues = Mapping[str, float | Mapping[tuple[str, ...], float]]


class _Collector:
    """Families whose values one callback computes at scrape time."""

    def __init__(self, descs: Sequence[MetricDesc], collect: Callable[[], CollectedValues]) -> None:
        self.descs = {d.name: d for d in descs}
        self._collect = collect

    def rows(self) -> dict[str, list[_Row]]:
        got = self._collect()
        out: dict[str, list[_Row]] = {name: [] for name in self.descs}
        for name, value in got.items():
            desc = self.descs.get(name)
            if desc is None:
                raise AssertionError(f"BUG: collector returned {name!r}, which it did not declare")
            if isinstance(value, Mapping):
                for key, v in sorted(value.items()):
                    out[name].append(("", tuple(zip(desc.labelnames, key, strict=True)), float(v)))
            elif desc.labelnames:
                raise AssertionError(f"BUG: collector gave {name!r} one value but it has labels")
            else:
                out[name].append(("", (), float(value)))
        return out


class Registry:
    """The metrics of one process part (a DB, a server): register, update, render.

    Thread-safe: instruments may be updated from any thread while a scrape renders.
    Collector callbacks run outside the registry's lock, so they may take their
    component's own locks (briefly: a scrape waits for them).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: dict[str, Counter | Gauge | Histogram] = {}
        self._collectors: list[_Collector] = []
        self._claimed: dict[str, str] = {}  # every sample/family name -> the family that owns it

    # ------------------------------------------------------------ registration

    def counter(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        const_labels: Mapping[str, str] | None = None,
    ) -> Counter:
        """Register a counter (``name`` ends with ``_total``)."""
        m = Counter(_desc(name, COUNTER, help, labelnames, const_labels), CounterChild)
        self._add_metric(m)
        return m

    def gauge(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        const_labels: Mapping[str, str] | None = None,
    ) -> Gauge:
        """Register a gauge."""
        m = Gauge(_desc(name, GAUGE, help, labelnames, const_labels), GaugeChild)
        self._add_metric(m)
        return m

    def histogram(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        const_labels: Mapping[str, str] | None = None,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        """Register a histogram with these finite, strictly increasing upper bounds
        (a trailing ``+Inf`` is accepted and implied anyway)."""
        bounds = tuple(float(b) for b in buckets)
        if bounds and bounds[-1] == math.inf:
            bounds = bounds[:-1]
        if (
            not bounds
            or not all(math.isfinite(b) for b in bounds)
            or any(a >= b for a, b in pairwise(bounds))
        ):
            raise BadDataError(
                f"register metric {name!r}: buckets must be finite, strictly increasing: {list(buckets)}"
            )
        desc = _desc(name, HISTOGRAM, help, labelnames, const_labels, bounds)
        m = Histogram(desc, lambda: HistogramChild(bounds))
        self._add_metric(m)
        return m

    def collector(self, descs: Sequence[MetricDesc], collect: Callable[[], CollectedValues]) -> None:
        """Register families (counters or gauges, see :meth:`desc`) whose values
        ``collect`` returns at each scrape; one call may fill many families, so a
        component takes one consistent look at its state per scrape."""
        for d in descs:
            if d.type not in (COUNTER, GAUGE):
                raise BadDataError(
                    f"register metric {d.name!r}: a collector gives counters or gauges, not {d.type}"
                )
        self._claim(list(descs))
        with self._lock:
            self._collectors.append(_Collector(descs, collect))

    @staticmethod
    def desc(
        name: str,
        type: str,
        help: str,
        labelnames: Sequence[str] = (),
        const_labels: Mapping[str, str] | None = None,
    ) -> MetricDesc:
        """A validated description for :meth:`collector`."""
        return _desc(name, type, help, labelnames, const_labels)

    def gauge_func(
        self, name: str, help: str, fn: Callable[[], float], const_labels: Mapping[str, str] | None = None
    ) -> None:
        """A gauge without labels whose value ``fn`` returns at each scrape."""
        self.collector([_desc(name, GAUGE, help, (), const_labels)], lambda: {name: fn()})

    def counter_func(
        self, name: str, help: str, fn: Callable[[], float], const_labels: Mapping[str, str] | None = None
    ) -> None:
        """A counter without labels whose running total ``fn`` returns at each scrape."""
        self.collector([_desc(name, COUNTER, help, (), const_labels)], lambda: {name: fn()})

    def unregister(self, names: Iterable[str]) -> None:
        """Forget these families (a component that closes); a collector goes when all
        of its families are named. Unknown names are ignored."""
        gone = set(names)
        with self._lock:
            for c in self._collectors:
                if set(c.descs) & gone and not set(c.descs) <= gone:
                    left = sorted(set(c.descs) - gone)
                    raise BadDataError(f"unregister {sorted(gone)}: their collector also gives {left}")
            for name in gone:
                self._metrics.pop(name, None)
            self._collectors = [c for c in self._collectors if not set(c.descs) <= gone]
            self._claimed = {k: v for k, v in self._claimed.items() if v not in gone}

    def _add_metric(self, m: Counter | Gauge | Histogram) -> None:
        self._claim([m.desc])
        with self._lock:
            self._metrics[m.desc.name] = m

    def _claim(self, descs: list[MetricDesc]) -> None:
        with self._lock:
            new: dict[str, str] = {}
            for d in descs:
                for s in d.sample_names():
                    owner = self._claimed.get(s) or new.get(s)
                    if owner is not None:
                        raise BadDataError(f"register metric {d.name!r}: name {s!r} is taken by {owner!r}")
                    new[s] = d.name
            self._claimed.update(new)

    # ------------------------------------------------------------ reading

    def describe(self) -> list[MetricDesc]:
        """Every registered family, sorted by name (what the docs list)."""
        with self._lock:
            descs = [m.desc for m in self._metrics.values()]
            descs += [d for c in self._collectors for d in c.descs.values()]
        return sorted(descs, key=lambda d: d.name)

    def collect(self, *, openmetrics: bool = False) -> list[MetricFamily]:
        """Every family with its current series, ready for the exposition writers.

        A counter family is named with ``_total`` in the text format and without it in
        OpenMetrics (its samples keep it), as both formats require.
        """
        with self._lock:
            metrics = list(self._metrics.values())
            collectors = list(self._collectors)
        rows: list[tuple[MetricDesc, list[_Row]]] = [(m.desc, m.rows(openmetrics)) for m in metrics]
        for c in collectors:
            got = c.rows()
            rows += [(c.descs[name], r) for name, r in got.items()]
        rows.sort(key=lambda dr: dr[0].name)
        return [_family(desc, r, openmetrics) for desc, r in rows]

    def render(self, *, openmetrics: bool = False, escaping: str = "allow-utf-8") -> bytes:
        """The ``/metrics`` body: text format 0.0.4, or OpenMetrics 1.0 with ``# EOF``."""
        families = self.collect(openmetrics=openmetrics)
        if openmetrics:
            return write_openmetrics(families, escaping=escaping)
        return write_text(families, escaping=escaping)

    def sample_value(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        """The value of the sample ``name{labels}`` (text-format names, e.g.
        ``x_bucket`` with ``le``), or None when there is none: for tests and tools."""
        want = Labels.from_dict({**(labels or {}), METRIC_NAME: name})
        for fam in self.collect():
            for s in fam.samples:
                if s.labels == want:
                    return s.value
        return None


def _family(desc: MetricDesc, rows: list[_Row], openmetrics: bool) -> MetricFamily:
    name = desc.name.removesuffix("_total") if openmetrics and desc.type == COUNTER else desc.name
    const = tuple(desc.const_labels)
    samples = tuple(
        Sample(Labels.from_pairs(((METRIC_NAME, desc.name + suffix), *const, *pairs)), value)
        for suffix, pairs, value in rows
    )
    return MetricFamily(name, desc.type, desc.help, "", samples)
