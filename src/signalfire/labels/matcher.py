"""Label matchers ``=``, ``!=``, ``=~``, ``!~`` with Prometheus 3.x semantics.

Regexes are RE2 (``google-re2``), compiled fully anchored as ``^(?s:...)$`` so that
``.`` matches a newline and a hostile pattern runs in linear time. Patterns that are
plain literals or alternations of literals skip the regex engine entirely.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import re2

from signalfire._types import Bool
from signalfire.errors import BadDataError

_META = set("\\.+*?()|[]{}^$")


class MatchType(enum.Enum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


def _literal_alternatives(pattern: str) -> frozenset[str] | None:
    """The set of literals when ``pattern`` is ``a|b|c`` of plain literals, else None."""
    if any(c in _META and c != "|" for c in pattern):
        return None
    return frozenset(pattern.split("|"))


def compile_regex(pattern: str) -> Any:
    """Compile ``pattern`` anchored with dot-all, raising BadDataError on invalid syntax."""
    opts = re2.Options()
    opts.log_errors = False
    try:
        return re2.compile("^(?s:" + pattern + ")$", opts)
    except re2.error as err:
        raise BadDataError(f"invalid regular expression {pattern!r}: {err}") from err


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher. ``matches("")`` tells whether a missing label matches."""

    type: MatchType
    name: str
    value: str
    _literals: frozenset[str] | None = field(default=None, compare=False, repr=False)
    _regex: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.type in (MatchType.REGEX, MatchType.NOT_REGEX):
            lits = _literal_alternatives(self.value)
            object.__setattr__(self, "_literals", lits)
            if lits is None:
                object.__setattr__(self, "_regex", compile_regex(self.value))

    @classmethod
    def equal(cls, name: str, value: str) -> Matcher:
        return cls(MatchType.EQUAL, name, value)

    @classmethod
    def parse_type(cls, op: str, name: str, value: str) -> Matcher:
        return cls(MatchType(op), name, value)

    @property
    def is_regex(self) -> bool:
        return self.type in (MatchType.REGEX, MatchType.NOT_REGEX)

    @property
    def is_negative(self) -> bool:
        return self.type in (MatchType.NOT_EQUAL, MatchType.NOT_REGEX)

    def _positive(self, value: str) -> bool:
        if self.type in (MatchType.EQUAL, MatchType.NOT_EQUAL):
            return value == self.value
        if self._literals is not None:
            return value in self._literals
        return self._regex.fullmatch(value) is not None

    def matches(self, value: str) -> bool:
        """Whether a label with ``value`` (``""`` when absent) satisfies this matcher."""
        return self._positive(value) != self.is_negative

    def matches_values(self, values: Sequence[str]) -> Bool:
        """Vectorised :meth:`matches` over distinct label values (one regex run per value)."""
        if self.type in (MatchType.EQUAL, MatchType.NOT_EQUAL) or self._literals is not None:
            want = {self.value} if self._literals is None else self._literals
            hit = np.fromiter((v in want for v in values), dtype=np.bool_, count=len(values))
        else:
            fm = self._regex.fullmatch
            hit = np.fromiter((fm(v) is not None for v in values), dtype=np.bool_, count=len(values))
        return ~hit if self.is_negative else hit

    def set_matches(self) -> frozenset[str] | None:
        """The exact values a positive matcher accepts, when that set is known and finite."""
        if self.type is MatchType.EQUAL:
            return frozenset([self.value])
        if self.type is MatchType.REGEX and self._literals is not None:
            return self._literals
        return None

    def __str__(self) -> str:
        from signalfire.labels.labels import is_legacy_label_name, quote

        name = self.name if is_legacy_label_name(self.name) else quote(self.name)
        return f"{name}{self.type.value}{quote(self.value)}"


def matches_all(matchers: Iterable[Matcher], labels: Iterable[tuple[str, str]]) -> bool:
    """Whether a label set satisfies every matcher (absent labels compare as ``""``)."""
    d = dict(labels)
    return all(m.matches(d.get(m.name, "")) for m in matchers)
