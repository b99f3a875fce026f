"""Immutable, sorted label sets.

A :class:`Labels` is a tuple of ``(name, value)`` pairs sorted by name, so equality,
hashing and ordering run in C. Tuple ordering is exactly Prometheus's ``labels.Compare``:
pairwise by name, then by value; a prefix sorts first.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping

from signalfire.util.gofmt import go_quote

METRIC_NAME = "__name__"
TYPE_LABEL = "__type__"
UNIT_LABEL = "__unit__"
BUCKET_LABEL = "le"
QUANTILE_LABEL = "quantile"

_intern = sys.intern


class Labels(tuple[tuple[str, str], ...]):
    """An immutable label set: sorted ``(name, value)`` pairs with unique names.

    Build one with :meth:`from_dict`, :meth:`from_pairs` or :meth:`from_strings`; the
    plain constructor trusts that its input is already sorted and unique.
    """

    __slots__ = ()

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> Labels:
        """Sort and intern ``pairs``; a later duplicate name wins; empty values are dropped."""
        d: dict[str, str] = {}
        for n, v in pairs:
            d[n] = v
        return cls.from_dict(d)

    @classmethod
    def from_dict(cls, d: Mapping[str, str]) -> Labels:
        """Labels from a mapping; empty values are dropped as Prometheus does."""
        return cls(tuple(sorted((_intern(n), _intern(v)) for n, v in d.items() if v != "")))

    @classmethod
    def from_strings(cls, *kv: str) -> Labels:
        """``Labels.from_strings("a", "1", "b", "2")``."""
        if len(kv) % 2:
            raise ValueError("from_strings needs an even number of strings")
        return cls.from_pairs(zip(kv[::2], kv[1::2]))

    def get(self, name: str, default: str = "") -> str:
        """The value of ``name``, or ``default`` when absent."""
        for n, v in self:
            if n == name:
                return v
        return default

    def has(self, name: str) -> bool:
        return any(n == name for n, _ in self)

    @property
    def metric_name(self) -> str:
        return self.get(METRIC_NAME)

    def names(self) -> list[str]:
        return [n for n, _ in self]

    def to_dict(self) -> dict[str, str]:
        return dict(self)

    def without(self, *names: str) -> Labels:
        """A copy without the given label names."""
        drop = set(names)
        return Labels(tuple(p for p in self if p[0] not in drop))

    def only(self, names: Iterable[str]) -> Labels:
        """A copy keeping only the given label names."""
        keep = set(names)
        return Labels(tuple(p for p in self if p[0] in keep))

    def without_metric_name(self) -> Labels:
        """Drop ``__name__`` together with ``__type__`` and ``__unit__`` (Prometheus 3.5+)."""
        return self.without(METRIC_NAME, TYPE_LABEL, UNIT_LABEL)

    def set(self, name: str, value: str) -> Labels:
        """A copy with ``name`` set to ``value`` (removed when ``value`` is empty)."""
        d = dict(self)
        if value == "":
            d.pop(name, None)
        else:
            d[name] = value
        return Labels.from_dict(d)

    def __str__(self) -> str:
        return format_labels(self)

    def __repr__(self) -> str:
        return f"Labels({format_labels(self)})"


EMPTY_LABELS = Labels(())

#: Go-style double-quoted string literal (``strconv.Quote``), as Prometheus prints values.
quote = go_quote


def _is_legacy_name(s: str, metric: bool) -> bool:
    if not s:
        return False
    first = s[0]
    if not (first.isascii() and (first.isalpha() or first == "_" or (metric and first == ":"))):
        return False
    return all(c.isascii() and (c.isalnum() or c == "_" or (metric and c == ":")) for c in s[1:])


def is_legacy_metric_name(s: str) -> bool:
    """``[a-zA-Z_:][a-zA-Z0-9_:]*``: a name that needs no quoting."""
    return _is_legacy_name(s, metric=True)


def is_legacy_label_name(s: str) -> bool:
    """``[a-zA-Z_][a-zA-Z0-9_]*``: a label name that needs no quoting."""
    return _is_legacy_name(s, metric=False)


def format_labels(ls: Iterable[tuple[str, str]]) -> str:
    """Render as Prometheus does: ``name{a="1", b="2"}``, quoting UTF-8 names when needed."""
    name = ""
    parts = []
    for n, v in ls:
        if n == METRIC_NAME:
            name = v
            continue
        key = n if is_legacy_label_name(n) else quote(n)
        parts.append(f"{key}={quote(v)}")
    if name and not is_legacy_metric_name(name):
        parts.insert(0, quote(name))
        name = ""
    if name and not parts:
        return name
    return name + "{" + ", ".join(parts) + "}"
