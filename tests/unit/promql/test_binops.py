"""Binary operators and vector matching, with Prometheus's error wording."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from memstore import MemStore

from signalfire.errors import QueryError
from signalfire.labels import Labels
from signalfire.promql import Engine, EngineOptions

M = 60_000
DELAYED = frozenset({"promql-delayed-name-removal"})
FILL = frozenset({"promql-binop-fill-modifiers"})


@pytest.fixture
def store() -> MemStore:
    return MemStore().load(
        """
        req{job="api", inst="0", status="200"} 10
        req{job="api", inst="1", status="200"} 20
        req{job="api", inst="0", status="500"} 1
        lim{job="api", status="200", owner="a"} 100
        lim{job="api", status="500", owner="b"} 50
        cap{job="api", inst="0"} 4
        cap{job="api", inst="1"} 8
        dup{l="alpha"} 1
        dup{l="beta"} 2
        one 3
        """,
        M,
    )


def vec(store: MemStore, expr: str, features: frozenset[str] = frozenset()) -> dict[str, float]:
    res = Engine(EngineOptions(features=features)).instant_query(store, expr, 0)
    assert res.result_type == "vector"
    return {str(ls): float(res.values[i, 0]) for i, ls in enumerate(res.labels)}


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("one + 1", {"{}": 4.0}),
        ("one * -2", {"{}": -6.0}),
        ("one == 3", {"one": 3.0}),
        ("3 == one", {"one": 3.0}),
        ("one > bool 5", {"{}": 0.0}),
        ("2 ^ 3 ^ 2", None),
        ("-one % 2", {"{}": -1.0}),
        ("one / 0", {"{}": math.inf}),
        ("atan2(one, 0)", None),
        ("one atan2 0", {"{}": math.pi / 2}),
    ],
)
def test_vector_scalar(store, expr, want):
    if want is None:
        return
    assert vec(store, expr) == want


def test_scalar_scalar_and_right_assoc_pow(store):
    res = Engine().instant_query(store, "2 ^ 3 ^ 2", 0)
    assert res.result_type == "scalar" and res.scalar == 512.0
    assert Engine().instant_query(store, "1 < bool 2", 0).scalar == 1.0


def test_one_to_one_ignoring_and_on(store):
    assert vec(store, 'req{status="200"} / ignoring(status) cap') == {
        '{inst="0", job="api"}': 2.5,
        '{inst="1", job="api"}': 2.5,
    }
    assert vec(store, 'req{status="200"} - on(inst) cap') == {'{inst="0"}': 6.0, '{inst="1"}': 12.0}


def test_comparison_keeps_left_name_and_value(store):
    assert vec(store, "req > on(inst) group_left cap") == {
        'req{inst="0", job="api", status="200"}': 10.0,
        'req{inst="1", job="api", status="200"}': 20.0,
    }
    assert vec(store, 'cap < ignoring(status) req{status="200"}') == {
        'cap{inst="0", job="api"}': 4.0,
        'cap{inst="1", job="api"}': 8.0,
    }


def test_group_left_with_include_labels(store):
    got = vec(store, "req / on(status) group_left(owner) lim")
    assert got == {
        '{inst="0", job="api", owner="a", status="200"}': 0.1,
        '{inst="1", job="api", owner="a", status="200"}': 0.2,
        '{inst="0", job="api", owner="b", status="500"}': 0.02,
    }


def test_group_right_values_keep_written_order(store):
    got = vec(store, "lim / on(status) group_right req")
    assert got['{inst="0", job="api", status="200"}'] == 10.0


def test_many_to_many_errors(store):
    with pytest.raises(
        QueryError, match="multiple matches for labels: many-to-one matching must be explicit"
    ):
        vec(store, "req + on(status) lim")
    msg = (
        "found duplicate series for the match group {} on the right hand-side of the operation: "
        '[{__name__="dup", l="alpha"}, {__name__="dup", l="beta"}];many-to-many matching not allowed: '
        "matching labels must be unique on one side"
    )
    with pytest.raises(QueryError) as err:
        vec(store, "one > on() dup")
    assert str(err.value) == msg
    with pytest.raises(QueryError, match="on the left hand-side"):
        vec(store, "dup * on() group_right one")


def test_set_operators(store):
    assert set(vec(store, 'req and on(status) lim{owner="b"}')) == {'req{inst="0", job="api", status="500"}'}
    assert set(vec(store, 'req unless on(status) lim{owner="b"}')) == {
        'req{inst="0", job="api", status="200"}',
        'req{inst="1", job="api", status="200"}',
    }
    got = vec(store, "cap or ignoring(status) req")
    assert set(got) == {'cap{inst="0", job="api"}', 'cap{inst="1", job="api"}'}
    got = vec(store, "one or dup")
    assert set(got) == {"one", 'dup{l="alpha"}', 'dup{l="beta"}'}


def test_same_labelset_after_name_drop_is_an_error():
    store = MemStore().load('t1{a="1"} 0\nt2{a="1"} 1', M)
    with pytest.raises(QueryError, match="vector cannot contain metrics with the same labelset"):
        vec(store, '-{a="1"}')
    with pytest.raises(QueryError, match="same labelset"):
        vec(store, '-{a="1"}', DELAYED)
    # Delayed removal keeps the name until the end, so a label_replace-free sum still sees two names.
    assert vec(store, 'sum by (__name__) ({a="1"})', DELAYED) == {"t1": 0.0, "t2": 1.0}


def test_bool_drops_name_immediately_or_delayed(store):
    assert vec(store, "one == bool 3") == {"{}": 1.0}
    assert vec(store, "one == bool 3", DELAYED) == {"{}": 1.0}


def test_range_query_or_merges_series_after_delayed_name_drop():
    store = MemStore().load("metric_a 1 _\nmetric_b 3 4", 10 * M)
    res = Engine(EngineOptions(features=DELAYED)).range_query(
        store, "-metric_a or -metric_b", 0, 20 * M, 10 * M
    )
    assert [str(ls) for ls in res.labels] == ["{}"]
    np.testing.assert_array_equal(res.present[0], [True, True, False])
    np.testing.assert_array_equal(res.values[0, :2], [-1.0, -4.0])


def test_fill_modifiers():
    store = MemStore().load(
        """
        l{k="a"} 10
        l{k="b"} 20
        r{k="a"} 100
        r{k="c"} 300
        """,
        M,
    )
    assert vec(store, "l + fill(0) r", FILL) == {'{k="a"}': 110.0, '{k="b"}': 20.0, '{k="c"}': 300.0}
    assert vec(store, "l + fill_right(1) r", FILL) == {'{k="a"}': 110.0, '{k="b"}': 21.0}
    assert vec(store, "l + fill_left(2) r", FILL) == {'{k="a"}': 110.0, '{k="c"}': 302.0}
    assert vec(store, "l != fill(300) r", FILL) == {'l{k="a"}': 10.0, 'l{k="b"}': 20.0}


def test_nan_comparisons(store):
    s = MemStore().load("n NaN", M)
    assert vec(s, "n != n") == {"n": pytest.approx(math.nan, nan_ok=True)}
    assert vec(s, "n == n") == {}


def test_delayed_name_drop_survives_vector_comparison():
    store = MemStore().load('x_total{a="1"} 0 60 120\ny_total{a="1"} 0 0 0', 5 * M)
    res = Engine(EngineOptions(features=DELAYED)).instant_query(
        store, "rate(x_total[10m]) > rate(y_total[10m])", 10 * M
    )
    assert [str(ls) for ls in res.labels] == ['{a="1"}']


# ---------------------------------------------------------------- against a per-sample twin

_LBL = st.sampled_from(["0", "1", "2"])


def _twin(lhs, rhs, op_fn, on, names, card, include, fill_l, fill_r):
    """Prometheus's VectorBinop, one step, written as plainly as possible."""

    def sig(ls):
        if on:
            return tuple((k, v) for k, v in ls if k in names)
        return tuple((k, v) for k, v in ls if k not in names and k != "__name__")

    if card == "right":
        lhs, rhs = rhs, lhs
    right = {}
    for ls, v in rhs:
        if sig(ls) in right:
            if lhs or fill_l is not None:
                return "error"
            continue
        right[sig(ls)] = (ls, v)
    out = {}
    matched = set()

    def add(labels, value):
        if labels in out:
            raise ValueError("dup")
        out[labels] = value

    def result_labels(ls, rs):
        d = {k: v for k, v in ls if k != "__name__"}
        if card == "one":
            d = {k: v for k, v in d.items() if (k in names) == on}
        for n in include:
            v = dict(rs).get(n, "")
            if v:
                d[n] = v
            else:
                d.pop(n, None)
        return Labels.from_dict(d)

    try:
        for ls, lv in lhs:
            s = sig(ls)
            if s in right:
                matched.add(s)
                rs, rv = right[s]
                a, b = (rv, lv) if card == "right" else (lv, rv)
                add(result_labels(ls, rs), op_fn(a, b))
            elif fill_r is not None:
                a, b = (fill_r, lv) if card == "right" else (lv, fill_r)
                add(result_labels(ls, Labels(())), op_fn(a, b))
        if fill_l is not None:
            lsigs = {sig(ls) for ls, _ in lhs}
            for s, (rs, rv) in right.items():
                if s not in lsigs:
                    d = dict(s)
                    for n in include:
                        if dict(rs).get(n):
                            d[n] = dict(rs)[n]
                    a, b = (rv, fill_l) if card == "right" else (fill_l, rv)
                    add(Labels.from_dict(d), op_fn(a, b))
    except ValueError:
        return "error"
    if card == "one" and len({sig(ls) for ls, _ in lhs if sig(ls) in right}) != sum(
        1 for ls, _ in lhs if sig(ls) in right
    ):
        return "error"
    return {str(k): v for k, v in out.items()}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(_LBL, _LBL, st.integers(1, 9)), max_size=5, unique_by=lambda x: x[:2]),
    st.lists(st.tuples(_LBL, _LBL, st.integers(1, 9)), max_size=5, unique_by=lambda x: x[:2]),
    st.sampled_from(["on(a)", "ignoring(b)", "on(a,b)", ""]),
    st.sampled_from(["", "group_left", "group_left(b)", "group_right"]),
    st.sampled_from(["", "fill(100)", "fill_left(100)", "fill_right(1000)"]),
)
def test_vector_matching_matches_twin(left, right, matching, group, fill):
    store = MemStore()
    for a, b, v in left:
        store.add({"__name__": "l", "a": a, "b": b}, [0], [float(v)])
    for a, b, v in right:
        store.add({"__name__": "r", "a": a, "b": b, "c": a + b}, [0], [float(v) * 10])
    if group and not matching:
        matching = "ignoring(c)"
    expr = f"l - {matching} {group} {fill} r"
    on = matching.startswith("on")
    names = frozenset(x.strip() for x in matching[matching.find("(") + 1 : -1].split(",") if x.strip())
    card = {"": "one", "group_left": "left", "group_left(b)": "left", "group_right": "right"}[group]
    include = ["b"] if group == "group_left(b)" else []
    if "b" in include and on and "b" in names:
        return  # a parse error: a label may not be in on() and group_left() at once
    fl = 100.0 if fill in ("fill(100)", "fill_left(100)") else None
    fr = {"fill(100)": 100.0, "fill_right(1000)": 1000.0}.get(fill)
    lv = [(Labels.from_dict({"__name__": "l", "a": a, "b": b}), float(v)) for a, b, v in sorted(left)]
    rv = [
        (Labels.from_dict({"__name__": "r", "a": a, "b": b, "c": a + b}), float(v) * 10)
        for a, b, v in sorted(right)
    ]
    want = _twin(lv, rv, lambda x, y: x - y, on, names, card, include, fl, fr)
    try:
        got = vec(store, expr, FILL)
    except QueryError:
        got = "error"
    assert got == want, expr
