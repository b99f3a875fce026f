import pytest

from signalfire.labels import Labels, Matcher, MatchType


def test_sorted_and_compare_like_prometheus() -> None:
    a = Labels.from_dict({"b": "2", "a": "1"})
    assert list(a) == [("a", "1"), ("b", "2")]
    assert Labels.from_dict({"a": "1"}) < a  # a prefix sorts first
    assert Labels.from_dict({"a": "1", "b": "1"}) < a
    assert hash(a) == hash(Labels.from_strings("a", "1", "b", "2"))


def test_empty_values_dropped_and_format() -> None:
    ls = Labels.from_dict({"__name__": "up", "job": "x", "empty": ""})
    assert str(ls) == 'up{job="x"}'
    assert str(Labels.from_dict({"__name__": "my.metric", "a.b": "c"})) == '{"my.metric", "a.b"="c"}'


@pytest.mark.parametrize(
    ("op", "pattern", "value", "want"),
    [
        ("=~", "a.b", "a\nb", True),  # 3.x: . matches newline
        ("=~", "foo", "foobar", False),  # fully anchored
        ("=~", "foo|bar", "bar", True),  # literal alternation fast path
        ("!~", "foo|bar", "baz", True),
        ("=~", "((?i)PRO).*", "prometheus", True),  # inline flags as RE2 allows
        ("=", "", "", True),
        ("!=", "x", "", True),
    ],
)
def test_matchers(op: str, pattern: str, value: str, want: bool) -> None:
    m = Matcher(MatchType(op), "l", pattern)
    assert m.matches(value) is want
    assert bool(m.matches_values([value])[0]) is want
