"""histogram_quantile(s) and histogram_fraction over classic ``le`` buckets."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from signalfire.errors import QueryError
from signalfire.labels import Labels
from signalfire.promql import ast
from signalfire.promql import histograms as hist
from signalfire.promql.functions import call_function
from signalfire.promql.values import EvalContext, EvalSettings, ScalarSeries, StepMatrix, StringValue


def ctx(T: int = 1, query: str = "") -> EvalContext:
    return EvalContext(
        ts=np.arange(T, dtype=np.int64) * 60000,
        start=0,
        end=(T - 1) * 60000,
        step=60000,
        settings=EvalSettings(query=query),
    )


def buckets(name: str, les: list[str], counts: list[float], **extra: str) -> StepMatrix:
    labels = [Labels.from_dict({"__name__": name, "le": le, **extra}) for le in les]
    vals = np.asarray(counts, np.float64)[:, None]
    return StepMatrix(labels, vals, np.ones_like(vals, np.bool_))


def concat(*sms: StepMatrix) -> StepMatrix:
    return StepMatrix(
        [ls for sm in sms for ls in sm.labels],
        np.concatenate([sm.values for sm in sms]),
        np.concatenate([sm.present for sm in sms]),
    )


def node(func: str, n: int) -> ast.Call:
    return ast.Call(func, [ast.NumberLiteral(0.0, pos=i * 5) for i in range(n)])


def quantile(q: float, sm: StepMatrix, c: EvalContext | None = None) -> dict[str, float]:
    c = c or ctx()
    out = call_function(node("histogram_quantile", 2), [ScalarSeries(np.array([q])), sm], c)
    assert isinstance(out, StepMatrix)
    return {
        str(ls.without("__name__")): float(v)
        for ls, v, p in zip(out.labels, out.values[:, 0], out.present[:, 0])
        if p
    }


TESTHISTOGRAM3 = concat(
    buckets(
        "testhistogram3_bucket", ["0", "0.1", ".2", "1e0", "+Inf"], [0, 50, 70, 110, 110], start="positive"
    ),
    buckets(
        "testhistogram3_bucket", ["-.25", "-.2", "-0.1", "0.3", "+Inf"], [0, 10, 20, 20, 20], start="negative"
    ),
)


@pytest.mark.parametrize(
    "q,pos,neg",
    [(0, 0, -0.25), (0.25, 0.055, -0.225), (0.5, 0.125, -0.2), (0.75, 0.45, -0.15), (1, 1, -0.1)],
)
def test_quantiles_of_reference_histogram(q: float, pos: float, neg: float) -> None:
    got = quantile(q, TESTHISTOGRAM3)
    assert got['{start="positive"}'] == pytest.approx(pos)
    assert got['{start="negative"}'] == pytest.approx(neg)


@pytest.mark.parametrize("q,want", [(-0.1, -math.inf), (1.01, math.inf)])
def test_out_of_range_quantile_warns(q: float, want: float) -> None:
    c = ctx()
    got = quantile(q, TESTHISTOGRAM3, c)
    assert set(got.values()) == {want}
    assert c.annotations.warning_list() == [
        f"PromQL warning: quantile value should be between 0 and 1, got {q:g} (1:1)"
    ]


def test_nan_quantile_is_nan() -> None:
    got = quantile(math.nan, TESTHISTOGRAM3)
    assert all(math.isnan(v) for v in got.values())


def test_nonmonotonic_buckets_are_fixed_with_info() -> None:
    sm = buckets("nonmonotonic_bucket", ["0.1", "1", "10", "100", "1000", "+Inf"], [20, 10, 50, 40, 90, 80])
    for q, want in [(0.01, 0.0045), (0.5, 8.5), (0.99, 979.75)]:
        c = ctx()
        c.settings = EvalSettings(delayed_name_removal=True)
        assert quantile(q, sm, c) == {"{}": pytest.approx(want)}
        (info,) = c.annotations.info_list()
        assert info.startswith(
            "PromQL info: input to histogram_quantile needed to be fixed for monotonicity "
        )
        assert '"nonmonotonic_bucket"' in info


def test_equal_bounds_are_coalesced() -> None:
    sm = buckets("mixed_bucket", ["0.1", "0.2", "2e-1", "2.0e-1", "+Inf"], [10, 10, 10, 10, 40])
    assert quantile(0.5, sm) == {"{}": pytest.approx(0.15)}


def test_missing_inf_bucket_or_single_bucket_is_nan() -> None:
    assert math.isnan(quantile(0.5, buckets("x_bucket", ["1", "2"], [1, 2]))["{}"])
    assert math.isnan(quantile(0.5, buckets("x_bucket", ["+Inf"], [3]))["{}"])
    assert math.isnan(quantile(0.5, buckets("x_bucket", ["1", "+Inf"], [0, 0]))["{}"])


@pytest.mark.parametrize("le", ["", "Hello World"])
def test_malformed_le_warns_and_is_skipped(le: str) -> None:
    labels = [Labels.from_dict({"__name__": "series", "le": le, "ale": "0.1"})]
    sm = StepMatrix(labels, np.array([[2.0]]), np.array([[True]]))
    c = ctx(query="histogram_quantile(0.8, series)")
    n = ast.Call(
        "histogram_quantile", [ast.NumberLiteral(0.8, pos=19), ast.VectorSelector("series", [], pos=24)]
    )
    out = call_function(n, [ScalarSeries(np.array([0.8])), sm], c)
    assert isinstance(out, StepMatrix) and out.num_series == 0
    assert c.annotations.warning_list() == [
        f'PromQL warning: bucket label "le" is missing or has a malformed value of "{le}" '
        'for metric name "series" (1:25)'
    ]


def test_histogram_quantiles_adds_label_and_detects_collisions() -> None:
    qs = [ScalarSeries(np.array([q])) for q in (0.0, 0.5, 1.0)]
    n = ast.Call("histogram_quantiles", [ast.NumberLiteral(0)] * 5)
    out = call_function(n, [TESTHISTOGRAM3, StringValue("q"), *qs], ctx())
    assert isinstance(out, StepMatrix)
    got = {str(ls.without("__name__")): float(v) for ls, v in zip(out.labels, out.values[:, 0])}
    assert got['{q="0.0", start="positive"}'] == 0
    assert got['{q="0.5", start="negative"}'] == pytest.approx(-0.2)
    assert got['{q="1.0", start="positive"}'] == 1
    with pytest.raises(QueryError, match="same labelset"):
        call_function(n, [TESTHISTOGRAM3, StringValue("start"), *qs], ctx())


FRACTION_CASES = [
    (["1", "2", "3", "+Inf"], [1, 3, 6, 100], 0, 1.5, 0.02),
    (["-3", "-2", "-1", "+Inf"], [10, 12, 15, 100], -4, -2, 0.02),
    (["-3", "-2", "-1", "+Inf"], [10, 12, 15, 100], -math.inf, -1.5, 0.135),
    (["1", "2", "3", "+Inf"], [1, 3, 6, 100], -math.inf, math.inf, 1.0),
    (["1", "2", "3", "+Inf"], [1, 3, 6, 100], 4, 5, 0.0),
    (["1", "2", "3", "+Inf"], [1, 3, 6, 100], 2, 5, 0.03),
    (["1", "2", "3", "+Inf"], [1, 3, 6, 100], 2, 2, 0.0),
    (["+Inf"], [100], 0, 1, 0.0),
    (["1", "2", "3", "+Inf"], [0, 0, 0, 0], 0, 5, math.nan),
    (["1", "2", "3", "+Inf"], [1, 3, 6, 100], 0.5, 2, 0.025),
    (["0.5", "1", "+Inf"], [2.5, 7.5, 100], 0.1, 0.75, 0.045),
    (["-2", "-1", "0", "1", "+Inf"], [5, 10, 15, 20, 100], -1, 1, 0.1),
    (["1", "+Inf"], [1, 100], math.nan, 1, math.nan),
    (["1", "2", "+Inf"], [1, 3, 10], -10, -5, 0.0),
    (["1", "2", "+Inf"], [1, 3, 10], 5, 10, 0.0),
]


@pytest.mark.parametrize("les,counts,lower,upper,want", FRACTION_CASES)
def test_histogram_fraction(
    les: list[str], counts: list[float], lower: float, upper: float, want: float
) -> None:
    n = node("histogram_fraction", 3)
    args = [
        ScalarSeries(np.array([lower])),
        ScalarSeries(np.array([upper])),
        buckets("h_bucket", les, counts),
    ]
    out = call_function(n, args, ctx())
    assert isinstance(out, StepMatrix)
    got = float(out.values[0, 0])
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(want, abs=1e-12)


def _ref_bucket_quantile(q: float, bks: list[tuple[float, float]]) -> float:
    """Prometheus BucketQuantile, line by line (monotonicity envelope + small deltas)."""
    bks = sorted(bks)
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if bks[-1][0] != math.inf:
        return math.nan
    merged: list[list[float]] = []
    for u, c in bks:
        if merged and merged[-1][0] == u:
            merged[-1][1] += c
        else:
            merged.append([u, c])
    prev = merged[0][1]
    for b in merged[1:]:
        if b[1] == prev:
            continue
        if abs(b[1] - prev) / (abs(b[1]) + abs(prev)) < 1e-12:
            b[1] = prev
            continue
        if b[1] < prev:
            b[1] = prev
            continue
        prev = b[1]
    if len(merged) < 2 or merged[-1][1] == 0:
        return math.nan
    rank = q * merged[-1][1]
    b = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[b][0], merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    # IEEE division as in Go: an empty bucket at rank 0 (q=0) gives 0/0 = NaN, not an error.
    ratio = rank / count if count else (math.nan if rank == 0 else math.copysign(math.inf, rank))
    return start + (end - start) * ratio


@settings(max_examples=150, deadline=None)
@given(
    bounds=st.lists(
        st.sampled_from([-2.0, -1.0, 0.0, 0.1, 0.5, 1.0, 2.0, 10.0]), min_size=0, max_size=5, unique=True
    ),
    counts=st.lists(st.integers(0, 20).map(float), min_size=6, max_size=6),
    with_inf=st.booleans(),
    q=st.sampled_from([0.0, 0.1, 0.5, 0.9, 0.99, 1.0]),
)
# q=0 with an empty first bucket: rank 0 over count 0 is NaN, as Go's float division gives.
@example(bounds=[0.1], counts=[0.0, 1.0, 0.0, 0.0, 0.0, 0.0], with_inf=True, q=0.0)
def test_bucket_quantile_matches_reference(
    bounds: list[float], counts: list[float], with_inf: bool, q: float
) -> None:
    les = [*bounds, math.inf] if with_inf else bounds
    if not les:
        return
    bks = list(zip(les, counts))
    sm = buckets("h_bucket", [("+Inf" if u == math.inf else repr(u)) for u in les], [c for _, c in bks])
    got = quantile(q, sm)["{}"]
    want = _ref_bucket_quantile(q, bks)
    assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want)


_COUNTS = st.one_of(
    st.integers(0, 30).map(float),
    st.sampled_from([math.nan, math.inf, 1e300, 5.0 * (1 + 1e-13), 5.0 * (1 - 1e-13), 0.0]),
)


@settings(max_examples=200, deadline=None)
@given(
    G=st.integers(1, 3),
    T=st.integers(1, 3),
    bounds=st.lists(
        st.sampled_from([-2.0, 0.0, 0.1, 1.0, 5.0, 10.0, math.inf]), min_size=1, max_size=5, unique=True
    ),
    data=st.data(),
    q=st.sampled_from([0.0, 0.25, 0.5, 0.9, 1.0, math.nan, -1.0, 2.0]),
)
def test_dense_histogram_path_is_the_per_bucket_path(G, T, bounds, data, q):
    """Blocks with every bucket present at every step take whole-block operations; on any
    such block (NaN, Inf, counts a hair apart, decreases, zero and negative bounds) the
    repair and the quantile are bit for bit those of the round per bucket, and the dense
    repair steps aside exactly when it cannot be sure."""
    B = len(bounds)
    upper = np.tile(np.asarray(sorted(bounds)), (G, 1))
    counts = np.asarray(data.draw(st.lists(_COUNTS, min_size=G * B * T, max_size=G * B * T))).reshape(G, B, T)
    block = hist.BucketBlock([Labels(())] * G, [""] * G, upper, counts, np.ones((G, B, T), np.bool_))
    slow = hist._fix_by_bucket(block)
    fast = hist._fix_dense(block)
    whole = ~np.isnan(counts).any() and (np.isinf(counts) | (counts == np.floor(counts))).all()
    assert fast is not None or not whole  # whole counts are never a hair apart
    for name in ("counts", "forced", "n_active", "last_upper", "observations"):
        if fast is not None:
            np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name), err_msg=name)
    with np.errstate(all="ignore"):
        rank = np.full(T, q)[None, :] * slow.observations
        dense = hist._quantile_dense(rank, block, slow)
        by_bucket = hist._quantile_by_bucket(rank, block, slow)
    np.testing.assert_array_equal(dense, by_bucket)
