"""The regex audit in docs/regexes.md stays true.

Every regular expression compiled or applied in ``src/`` (``re`` or ``re2``) must be listed
in the audit with why it runs in linear time. ``re`` backtracks, so for its patterns the
audit's argument rests on one rule that is checked here on the compiled patterns: every
repetition that can take more than one length is possessive (``*+``, ``++``, ``?+`` aside,
``{m,n}+``) or sits in an atomic group, so the matcher never returns into it to try
another split. (A lone ``?`` may stay greedy: it gives at most two tries.)
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "signalfire"
DOC = ROOT / "docs" / "regexes.md"
_FUNCS = {"compile", "match", "fullmatch", "search", "split", "sub", "subn", "findall", "finditer"}


def regex_sites() -> dict[str, tuple[str, str]]:
    """``path::name`` -> (module, global name or "") for every ``re``/``re2`` call in src/:
    the name assigned at module level, else the enclosing function's name."""
    sites: dict[str, tuple[str, str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        module = "signalfire." + rel[:-3].replace("/", ".").removesuffix(".__init__")
        tree = ast.parse(path.read_text(), filename=str(path))
        owners: dict[ast.AST, str] = {}
        globals_: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                for sub in ast.walk(node):
                    owners.setdefault(sub, node.name)
        for node in tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for sub in ast.walk(node):
                    for t in targets:
                        if isinstance(t, ast.Name):
                            owners[sub] = t.id
                            globals_.add(t.id)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("re", "re2")
                and node.func.attr in _FUNCS
            ):
                name = owners.get(node, "<module>")
                sites[f"{rel}::{name}"] = (module, name if name in globals_ else "")
    return sites


def test_every_regex_in_src_is_in_the_audit() -> None:
    doc = DOC.read_text()
    sites = regex_sites()
    assert len(sites) > 20  # the walk finds them (it would pass vacuously otherwise)
    missing = sorted(key for key in sites if f"`{key}`" not in doc)
    assert not missing, f"regexes not listed in {DOC.relative_to(ROOT)}: {missing}"
    listed = set(re.findall(r"`([\w/]+\.py::\w+)`", doc))
    stale = sorted(listed - set(sites))
    assert not stale, f"{DOC.relative_to(ROOT)} lists regexes that no longer exist: {stale}"


def _backtracking_repeats(pattern: re.Pattern[str]) -> list[str]:
    """Repeats in ``pattern`` that the matcher may re-enter: neither possessive nor atomic."""
    from re import _constants as c  # type: ignore[attr-defined]
    from re import _parser as p  # type: ignore[attr-defined]

    found: list[str] = []

    def walk(items: object, atomic: bool) -> None:
        for op, arg in items:  # type: ignore[attr-defined]
            if op in (c.MAX_REPEAT, c.MIN_REPEAT):
                lo, hi, body = arg
                if not atomic and hi > 1 and lo != hi:
                    found.append(f"{'{'}{lo},{'' if hi == c.MAXREPEAT else hi}{'}'}")
                walk(body, atomic)
            elif op == c.POSSESSIVE_REPEAT:
                walk(arg[2], True)
            elif op == c.ATOMIC_GROUP:
                walk(arg, True)
            elif op == c.SUBPATTERN:
                walk(arg[-1], atomic)
            elif op == c.BRANCH:
                for alt in arg[1]:
                    walk(alt, atomic)
            elif op in (c.ASSERT, c.ASSERT_NOT):
                walk(arg[1], atomic)

    walk(p.parse(pattern.pattern, pattern.flags), False)
    return found


def test_re_patterns_cannot_backtrack_into_repeats() -> None:
    bad = []
    for key, (module, name) in regex_sites().items():
        if not name:
            continue
        obj = getattr(importlib.import_module(module), name)
        if isinstance(obj, re.Pattern):
            reps = _backtracking_repeats(obj)
            if reps:
                bad.append(f"{key}: {reps}")
    assert not bad, bad


def test_the_rule_is_checked() -> None:
    # The check itself: the pattern of the exponential parse is caught, its fix is not.
    assert _backtracking_repeats(re.compile(r"(?:(?:[0-9]+\.?[0-9]*)\n)*"))
    assert not _backtracking_repeats(re.compile(r"(?:(?:[0-9]++(?:\.[0-9]*+)?+)\n)*+"))
    assert not _backtracking_repeats(re.compile(r"(?>a*b)|[0-9]{8}|x?"))


def test_regex_modules_are_imported_plainly() -> None:
    """``from re import compile`` or ``import re as r`` would hide a site from the walk above."""
    hidden = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in ("re", "re2"):
                hidden.append(f"{path.relative_to(SRC)}:{node.lineno}")
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in ("re", "re2", "regex") and alias.asname not in (None, alias.name):
                        hidden.append(f"{path.relative_to(SRC)}:{node.lineno}")
                    if alias.name == "regex":
                        hidden.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not hidden, hidden
