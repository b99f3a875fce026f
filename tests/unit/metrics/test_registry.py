"""The self-metrics registry: instruments, collectors, validation and exposition.

Exposition is checked the strong way: registries with any mix of families, label values
(quotes, backslashes, newlines, other scripts, empty) and values are rendered in both
formats and parsed back by our own parsers and by prometheus_client's, and every parsed
sample must equal what a plain model of the updates says.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
from prometheus_client.parser import text_string_to_metric_families as text_families

from signalfire.errors import BadDataError
from signalfire.exposition import lint, parse_openmetrics, parse_text
from signalfire.metrics import DEFAULT_BUCKETS, Registry, exponential_buckets

#: A parsed sample as the model and every parser give it: name, labels (``le`` as a float).
Key = tuple[str, frozenset[tuple[str, object]]]


def _key(name: str, labels: Iterable[tuple[str, str]]) -> Key:
    return name, frozenset((n, float(v) if n == "le" else v) for n, v in labels if v != "")


def _same(a: dict[Key, float], b: dict[Key, float]) -> bool:
    return a.keys() == b.keys() and all((math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a)


def _ours(body: bytes, openmetrics: bool) -> dict[Key, float]:
    r = parse_openmetrics(body) if openmetrics else parse_text(body)
    out = {}
    for lset, v in zip(r.labels, r.values.tolist(), strict=True):
        out[_key(lset.metric_name, ((n, x) for n, x in lset if n != "__name__"))] = v
    assert len(out) == len(r.labels), "a series was rendered twice"
    return out


def _client(body: bytes, openmetrics: bool) -> dict[Key, float]:
    parse = om_families if openmetrics else text_families
    return {
        _key(s.name, s.labels.items()): float(s.value)
        for fam in parse(body.decode("utf-8"))
        for s in fam.samples
    }


# --------------------------------------------------------------------------- model

label_values = st.text(alphabet=st.sampled_from('ab"\\\n é漢 {}=,'), max_size=6)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def registries(draw: st.DrawFn) -> tuple[Registry, dict[Key, float], set[Key]]:
    """A registry with random families and updates, the samples a model expects, and
    those of them OpenMetrics leaves out."""
    reg, want, not_in_om = Registry(), {}, set()
    for i in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["counter", "gauge", "histogram", "collector"]))
        labelnames = tuple(f"l{j}" for j in range(draw(st.integers(0, 2))))
        children = draw(
            st.lists(st.tuples(*[label_values] * len(labelnames)), min_size=1, max_size=3, unique=True)
            if labelnames
            else st.just([()])
        )
        if kind == "counter":
            c = reg.counter(f"m{i}_total", f"Counter {i}.", labelnames)
            for key in children:
                incs = draw(st.lists(st.floats(0, 1e6), max_size=4))
                child = c.labels(*key)  # a labelled series exists from its first labels() on
                for x in incs:
                    child.inc(x)
                want[_key(f"m{i}_total", zip(labelnames, key))] = float(sum(incs))
        elif kind == "gauge":
            g = reg.gauge(f"m{i}", f"Gauge {i}.", labelnames)
            for key in children:
                v = draw(st.floats(width=64))
                g.labels(*key).set(v)
                want[_key(f"m{i}", zip(labelnames, key))] = v
        elif kind == "histogram":
            bounds = draw(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=4, unique=True))
            h = reg.histogram(f"m{i}_seconds", f"Histogram {i}.", labelnames, buckets=sorted(bounds))
            for key in children:
                # Negative observations only where bounds say negatives are expected: an
                # OpenMetrics sum is a counter (prometheus_client rejects one below zero).
                obs = draw(st.lists(st.floats(min(0.0, *bounds) * 2, 2e3), max_size=6))
                half = len(obs) // 2
                for x in obs[:half]:
                    h.labels(*key).observe(x)
                h.labels(*key).observe_many(np.array(obs[half:]))
                pairs = list(zip(labelnames, key))
                for b in [*sorted(bounds), math.inf]:
                    n = sum(1 for x in obs if x <= b)
                    want[_key(f"m{i}_seconds_bucket", [*pairs, ("le", repr(b))])] = float(n)
                count, total = _key(f"m{i}_seconds_count", pairs), _key(f"m{i}_seconds_sum", pairs)
                want[count], want[total] = float(len(obs)), math.fsum(obs)
                if min(bounds) < 0:
                    not_in_om |= {count, total}
        else:
            values = {key: draw(finite) for key in children}
            name = f"m{i}_info"
            desc = Registry.desc(name, "gauge", f"Collected {i}.", labelnames)
            reg.collector(
                [desc], lambda values=values, name=name, ln=labelnames: {name: values if ln else values[()]}
            )
            for key, v in values.items():
                want[_key(name, zip(labelnames, key))] = v
    return reg, want, not_in_om


def _approx(a: dict[Key, float], b: dict[Key, float]) -> dict[Key, float]:
    """``b`` with each ``_sum`` replaced by ``a``'s when they agree to rounding (the
    registry adds in observation order, the model with fsum)."""
    out = dict(b)
    for k, v in b.items():
        if k[0].endswith("_sum") and k in a and math.isclose(a[k], v, rel_tol=1e-9, abs_tol=1e-6):
            out[k] = a[k]
    return out


@settings(max_examples=60, deadline=None)
@given(registries())
def test_text_and_openmetrics_parse_back_to_the_model(
    case: tuple[Registry, dict[Key, float], set[Key]],
) -> None:
    reg, want, not_in_om = case
    text = reg.render()
    om = reg.render(openmetrics=True)
    for body, openmetrics in ((text, False), (om, True)):
        ours = _ours(body, openmetrics)
        # OpenMetrics has no _sum/_count beside negative bounds (see HistogramChild.rows).
        expect = {k: v for k, v in want.items() if not (openmetrics and k in not_in_om)}
        assert _same(ours, _approx(ours, expect)), body.decode()
        # prometheus_client rejects a NaN gauge in neither format; it parses both fully.
        client = _client(body, openmetrics)
        assert _same(client, ours), body.decode()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=6, unique=True),
    st.lists(st.floats(width=64), max_size=40),
)
def test_histogram_buckets_are_cumulative_and_batch_equals_one_by_one(
    bounds: list[float], obs: list[float]
) -> None:
    bounds.sort()
    reg = Registry()
    one = reg.histogram("one_seconds", "h", buckets=bounds)
    many = reg.histogram("many_seconds", "h", buckets=bounds)
    for x in obs:
        one.observe(x)
    many.observe_many(obs)
    counts_one, sum_one = one._only().snapshot()
    counts_many, sum_many = many._only().snapshot()
    assert counts_one == counts_many
    assert counts_one == sorted(counts_one) and counts_one[-1] == len(obs) == one.count
    # le is inclusive; NaN lands in +Inf only, as in client_golang.
    for b, n in zip([*bounds, math.inf], counts_one, strict=True):
        assert n == sum(1 for x in obs if x <= b or b == math.inf)
    if any(math.isnan(x) for x in obs) or (math.inf in obs and -math.inf in obs):
        assert math.isnan(sum_one) and math.isnan(sum_many)
    else:
        assert sum_one == pytest.approx(sum_many, rel=1e-9, abs=1e-6)


def test_exposition_shape_and_lint() -> None:
    """HELP and TYPE per family, sorted by name; counters named with _total in the text
    format and without it in OpenMetrics; promtool's lint finds nothing."""
    reg = Registry()
    reg.gauge("b_bytes", "Bytes.").set(3)
    c = reg.counter("a_requests_total", "Requests.", ["code"], const_labels={"job": "x"})
    c.labels("500").inc()
    c.labels(code="200").inc(2)
    reg.histogram("c_seconds", "Latency.", buckets=(1, 2)).observe(1)
    text = reg.render().decode()
    assert text.splitlines()[:4] == [
        "# HELP a_requests_total Requests.",
        "# TYPE a_requests_total counter",
        'a_requests_total{code="200",job="x"} 2',
        'a_requests_total{code="500",job="x"} 1',
    ]
    assert 'c_seconds_bucket{le="1"} 1\nc_seconds_bucket{le="2"} 1\nc_seconds_bucket{le="+Inf"} 1\n' in text
    om = reg.render(openmetrics=True).decode()
    assert "# TYPE a_requests counter\n" in om and om.endswith("# EOF\n")
    assert 'c_seconds_bucket{le="1.0"} 1' in om
    assert lint(text.encode()) == []


@pytest.mark.parametrize(
    ("kind", "name", "kwargs"),
    [
        ("gauge", "", {}),
        ("gauge", "1abc", {}),
        ("gauge", "a-b", {}),
        ("gauge", "a.b", {}),
        ("gauge", "é", {}),
        ("gauge", "a_total", {}),
        ("counter", "a", {}),
        ("counter", "_total", {}),
        ("histogram", "a_total", {}),
        ("histogram", "a_bucket", {}),
        ("histogram", "a_count", {}),
        ("histogram", "a_sum", {}),
        ("histogram", "a", {"labelnames": ["le"]}),
        ("histogram", "a", {"buckets": []}),
        ("histogram", "a", {"buckets": [2, 1]}),
        ("histogram", "a", {"buckets": [1, 1]}),
        ("histogram", "a", {"buckets": [float("nan")]}),
        ("histogram", "a", {"buckets": [float("-inf"), 1]}),
        ("gauge", "a", {"labelnames": ["__x"]}),
        ("gauge", "a", {"labelnames": ["a:b"]}),
        ("gauge", "a", {"labelnames": ["1a"]}),
        ("gauge", "a", {"labelnames": [""]}),
        ("gauge", "a", {"labelnames": ["x", "x"]}),
        ("gauge", "a", {"labelnames": ["x"], "const_labels": {"x": "1"}}),
        ("gauge", "a", {"const_labels": {"a.b": "1"}}),
    ],
)
def test_invalid_descriptions_are_rejected(kind: str, name: str, kwargs: dict[str, object]) -> None:
    reg = Registry()
    with pytest.raises(BadDataError, match=f"register metric {name!r}"):
        getattr(reg, kind)(name, "Help.", **kwargs)
    assert reg.describe() == [] and reg.render() == b""


def test_empty_help_is_rejected() -> None:
    with pytest.raises(BadDataError, match="help"):
        Registry().gauge("a", "")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("gauge", "a"), ("gauge", "a")),
        (("gauge", "a"), ("counter", "a_total")),  # OpenMetrics names the counter family "a"
        (("gauge", "a_created"), ("counter", "a_total")),
        (("histogram", "a"), ("gauge", "a_count")),
        (("gauge", "a_bucket"), ("histogram", "a")),
        (("counter", "a_total"), ("histogram", "a")),
    ],
)
def test_names_that_would_clash_are_rejected(first: tuple[str, str], second: tuple[str, str]) -> None:
    reg = Registry()
    getattr(reg, first[0])(first[1], "First.")
    with pytest.raises(BadDataError, match="is taken by"):
        getattr(reg, second[0])(second[1], "Second.")
    assert [d.name for d in reg.describe()] == [first[1]]


def test_wrong_updates_are_rejected() -> None:
    reg = Registry()
    c = reg.counter("a_total", "A.")
    for bad in (-1.0, float("nan")):
        with pytest.raises(BadDataError, match="increment"):
            c.inc(bad)
    assert c.value == 0
    lc = reg.counter("b_total", "B.", ["x", "y"])
    with pytest.raises(BadDataError, match="use labels"):
        lc.inc()
    with pytest.raises(BadDataError, match="label values"):
        lc.labels("1")
    with pytest.raises(BadDataError, match="labels"):
        lc.labels(x="1", z="2")
    assert lc.labels("1", "2") is lc.labels(y="2", x="1")


def test_collectors_are_read_at_scrape_time_and_unregister_together() -> None:
    reg = Registry()
    state = {"n": 1.0}
    reg.gauge_func("a_items", "Items.", lambda: state["n"])
    reg.counter_func("a_done_total", "Done.", lambda: state["n"] * 10)
    descs = [Registry.desc("b_up", "gauge", "Up.", ["job"]), Registry.desc("b_x", "gauge", "X.")]
    reg.collector(descs, lambda: {"b_up": {("a",): 1.0, ("b",): 0.0}, "b_x": state["n"]})
    state["n"] = 5.0
    assert reg.sample_value("a_items") == 5 and reg.sample_value("a_done_total") == 50
    assert reg.sample_value("b_up", {"job": "b"}) == 0 and reg.sample_value("b_x") == 5
    with pytest.raises(BadDataError, match="also gives"):
        reg.unregister(["b_up"])
    reg.unregister(["b_up", "b_x", "a_items"])
    assert [d.name for d in reg.describe()] == ["a_done_total"]
    reg.gauge("b_up", "Reused after unregister.")  # the names are free again
    with pytest.raises(BadDataError, match="collector gives counters or gauges"):
        reg.collector([Registry.desc("h", "histogram", "H.")], dict)


def test_a_collector_returning_an_undeclared_name_is_a_bug() -> None:
    reg = Registry()
    reg.collector([Registry.desc("a", "gauge", "A.")], lambda: {"b": 1.0})
    with pytest.raises(AssertionError, match="BUG"):
        reg.render()


def test_a_collector_may_use_the_registry_it_is_in() -> None:
    """Collectors run outside the registry's lock: one that reads the registry (or takes
    a lock another thread holds while registering) does not deadlock the scrape."""
    reg = Registry()
    reg.gauge_func("a_families", "Families.", lambda: len(reg.describe()))
    assert reg.sample_value("a_families") == 1


def test_two_registries_are_independent() -> None:
    a, b = Registry(), Registry()
    ca, cb = a.counter("x_total", "X."), b.counter("x_total", "X.")
    ca.inc(3)
    b.histogram("h_seconds", "H.")
    assert cb.value == 0 and a.sample_value("x_total") == 3 and b.sample_value("x_total") == 0
    assert [d.name for d in a.describe()] == ["x_total"]
    assert b.sample_value("h_seconds_bucket", {"le": "+Inf"}) == 0
    assert len(b.describe()[0].buckets) == len(DEFAULT_BUCKETS)


def test_updates_from_many_threads_all_count() -> None:
    reg = Registry()
    c = reg.counter("a_total", "A.", ["t"])
    h = reg.histogram("b_seconds", "B.")
    g = reg.gauge("c", "C.")

    def work(t: int) -> None:
        child = c.labels(str(t % 2))
        for _ in range(2000):
            child.inc()
            h.observe(0.01)
            g.inc()
            g.dec(0.5)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.labels("0").value + c.labels("1").value == 8000
    assert h.count == 8000 and g.value == 4000


def test_exponential_buckets() -> None:
    assert exponential_buckets(1, 2, 4) == (1, 2, 4, 8)
    for bad in ((0, 2, 3), (1, 1, 3), (1, 2, 0)):
        with pytest.raises(BadDataError):
            exponential_buckets(*bad)
