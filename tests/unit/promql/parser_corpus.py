"""Shared by the parser and printer tests: the upstream eval expressions, tree equality."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from shared_data import PROMQLTEST

SCRIPTS = PROMQLTEST
_EVAL = re.compile(
    r"^eval(?:_fail|_warn|_info|_ordered)?\s+"
    r"(?:instant\s+at\s+\S+|range\s+from\s+\S+\s+to\s+\S+\s+step\s+\S+)\s+(.*)$"
)


def conformance_expressions() -> list[tuple[str, str]]:
    """(file:line, expression) of every ``eval`` in the upstream test scripts."""
    out = []
    for path in sorted(SCRIPTS.glob("*.test")):
        for n, line in enumerate(path.read_text().split("\n"), 1):
            m = _EVAL.match(line.strip(" \t"))
            if m:
                out.append((f"{path.name}:{n}", m.group(1)))
    return out


def same_tree(a: Any, b: Any) -> bool:
    """Structural equality ignoring positions, matcher order and an explicit empty ``by ()``."""
    if type(a) is not type(b):
        return False
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            if f.name in ("pos", "end") or (f.name == "by_given" and not a.grouping):
                continue
            x, y = getattr(a, f.name), getattr(b, f.name)
            if f.name == "matchers":
                x, y = sorted(x, key=str), sorted(y, key=str)
            if not same_tree(x, y):
                return False
        return True
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same_tree(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)
