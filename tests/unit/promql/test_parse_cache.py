"""The engine's parse cache: hits, keys, bound, and that shared trees stay as parsed."""

from __future__ import annotations

from typing import Any

import pytest
from memstore import MemStore
from parser_corpus import conformance_expressions

from signalfire.errors import PromQLParseError, SignalfireError
from signalfire.promql import Engine, EngineOptions, add_at_modifiers
from signalfire.promql.engine import MAX_CACHED_TEXT
from signalfire.promql.features import CONFORMANCE, EXPERIMENTAL_FUNCTIONS

M = 60_000


@pytest.fixture(scope="module")
def store() -> MemStore:
    return MemStore().load(
        """
        up{job="a", instance="x"} 1 1 1 1 1 1 1 1 1 1 1
        up{job="b", instance="y"} 0 0 0 _ 0 0 stale 0 0 0 0
        c_total{job="a"} 0 10 20 30 40 50 60 70 80 90 100
        h_bucket{le="1"} 0 1 2 3 4 5 6 7 8 9 10
        h_bucket{le="+Inf"} 0 2 4 6 8 10 12 14 16 18 20
        """,
        M,
    )


def _outcome(engine: Engine, store: MemStore, text: str, instant: bool) -> Any:
    """What a query gives, errors included, in a comparable form."""
    try:
        if instant:
            res = engine.instant_query(store, text, 5 * M + 500)
        else:
            res = engine.range_query(store, text, M, 9 * M, M)
    except SignalfireError as err:
        return ("error", type(err).__name__, str(err))
    return (res.to_json(), res.warnings, res.infos)


def test_repeated_queries_hit_the_cache_and_share_one_tree(store):
    eng = Engine()
    for text in ("up", "sum by (job) (rate(c_total[5m]))", "up / on(instance) up"):
        before = eng._parse_cached.cache_info()
        first = eng.instant_query(store, text, 5 * M)
        tree = eng._parsed(text)
        again = eng.range_query(store, text, M, 5 * M, M)
        after = eng._parse_cached.cache_info()
        assert after.misses == before.misses + 1 and after.hits == before.hits + 2
        assert eng._parsed(text) is tree
        assert first.to_json() and again.to_json()


def test_features_and_engines_do_not_share_entries(store):
    """An experimental function parses with its feature and is refused without it, in
    whichever order the two engines see it, and one cache keeps the two keys apart."""
    text = "sort_by_label(up, 'job')"
    on = Engine(EngineOptions(features=frozenset({EXPERIMENTAL_FUNCTIONS})))
    off = Engine()
    for _ in range(2):
        assert on.instant_query(store, text, 5 * M).result_type == "vector"
        with pytest.raises(PromQLParseError, match="not enabled"):
            off.instant_query(store, text, 5 * M)
    assert off._parse_cached.cache_info().currsize == 0  # errors are not kept
    assert on._parse_cached.cache_info().currsize == 1
    # The key holds the features: the entry made with them does not answer without them.
    with pytest.raises(PromQLParseError, match="not enabled"):
        on._parse_cached(text, frozenset())
    a, b = on._parse_cached("up", frozenset()), on._parse_cached("up", frozenset({EXPERIMENTAL_FUNCTIONS}))
    assert a is not b and on._parse_cached.cache_info().currsize == 3


def test_bound_is_honoured_least_recently_used_out_first(store):
    eng = Engine(EngineOptions(parse_cache_size=4))
    texts = [f"up + {i}" for i in range(10)]
    for t in texts:
        eng.instant_query(store, t, 5 * M)
    info = eng._parse_cached.cache_info()
    assert info.currsize == 4 and info.maxsize == 4
    kept = eng._parsed(texts[-1])
    eng.instant_query(store, texts[0], 5 * M)  # gone: parsed again, pushes out texts[6]
    assert eng._parse_cached.cache_info().misses == info.misses + 1
    assert eng._parsed(texts[-1]) is kept
    misses = eng._parse_cached.cache_info().misses
    eng._parsed(texts[6])
    assert eng._parse_cached.cache_info().misses == misses + 1


@pytest.mark.parametrize("size", [0, -3])
def test_no_cache_when_size_is_zero(store, size):
    eng = Engine(EngineOptions(parse_cache_size=size))
    eng.instant_query(store, "up", 5 * M)
    assert eng._parsed("up") is not eng._parsed("up")
    assert eng._parse_cached.cache_info().currsize == 0


def test_long_texts_are_not_kept(store):
    eng = Engine()
    long_text = 'up{job!="' + "a" * MAX_CACHED_TEXT + '"}'
    assert len(long_text) > MAX_CACHED_TEXT
    eng.instant_query(store, long_text, 5 * M)
    assert eng._parse_cached.cache_info().currsize == 0
    assert eng._parsed(long_text) is not eng._parsed(long_text)


def test_parse_gives_the_caller_a_tree_of_its_own(store):
    """``Engine.parse`` is not the shared tree: changing it in place (as add_at_modifiers
    does) must not change what later queries of the same text answer."""
    eng = Engine()
    want = _outcome(eng, store, "up", False)
    add_at_modifiers(eng.parse("up"), 0)
    assert eng.parse("up") is not eng._parsed("up")
    assert _outcome(eng, store, "up", False) == want


def test_cached_trees_are_not_changed_by_evaluation_and_answers_match(store):
    """Every upstream conformance expression, evaluated as instant and range queries through
    the cache: the cached tree still prints and compares as a fresh parse does (positions
    included), and every answer or error is the one an engine without cache gives."""
    features = frozenset(CONFORMANCE)
    cached = Engine(EngineOptions(features=features, lookback_delta_ms=5 * M))
    plain = Engine(EngineOptions(features=features, lookback_delta_ms=5 * M, parse_cache_size=0))
    checked = 0
    for where, text in conformance_expressions():
        try:
            fresh = cached.parse(text)
        except PromQLParseError:
            continue
        for instant in (True, False, True):
            got = _outcome(cached, store, text, instant)
            assert got == _outcome(plain, store, text, instant), where
        assert repr(cached._parsed(text)) == repr(fresh), where
        checked += 1
    assert checked > 1000
