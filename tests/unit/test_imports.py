"""Import hygiene: every module imports on its own, and lower layers never import higher ones.

The layer order is DESIGN.md's / STYLE.md §1's:
``{_types, errors, util} < labels < exposition < storage < {tsdb, promql} < database < ... < cli``,
with ``metrics`` (the self-metrics registry, rendered by ``exposition``) between exposition
and storage, so storage and every layer above it can register metrics.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import signalfire

SRC = Path(signalfire.__file__).parent

LAYERS: list[set[str]] = [
    {"_types", "errors", "util"},
    {"labels"},
    {"exposition"},
    {"metrics"},
    {"storage"},
    {"tsdb", "promql"},
    {"database"},
    {"discovery"},
    {"config"},
    {"scrape", "rules", "notifier", "remote"},
    {"web"},
    {"cli", "__main__", "__init__"},
]


def _layer(top: str) -> int:
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"package {top!r} is not placed in a layer; add it to LAYERS")


def _modules() -> list[str]:
    mods = []
    for p in sorted(SRC.rglob("*.py")):
        rel = p.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods.append(".".join(parts))
    return mods


def _top(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


_IMPORT_EACH = """
import importlib, sys
failed = []
for mod in sys.argv[1:]:
    # Forget every signalfire module first, so an import cycle a warm cache hides shows up.
    for name in [n for n in sys.modules if n == "signalfire" or n.startswith("signalfire.")]:
        del sys.modules[name]
    try:
        importlib.import_module(mod)
    except Exception as err:
        failed.append(f"{mod}: {type(err).__name__}: {err}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_each_module_imports_alone() -> None:
    mods = [m for m in _modules() if m != "signalfire.__main__"]
    proc = subprocess.run([sys.executable, "-c", _IMPORT_EACH, *mods], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_lower_layers_never_import_higher_ones() -> None:
    bad = []
    for p in sorted(SRC.rglob("*.py")):
        rel = p.relative_to(SRC.parent).with_suffix("")
        mod = ".".join(rel.parts)
        here = _top(mod if not mod.endswith("__init__") else mod.rsplit(".", 1)[0] + ".__init__")
        if mod == "signalfire.__init__":
            here = "__init__"
        tree = ast.parse(p.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                if n.startswith("signalfire.") and _layer(_top(n)) > _layer(here):
                    bad.append(f"{mod} imports {n}")
    assert not bad, "\n".join(bad)


#: What the parser side of promql (the parser subpackage and the function table it checks
#: calls against) may import from promql: data and text helpers, never an engine kernel.
_PARSER_SIDE_MAY_IMPORT = {"ast", "check", "durations", "features", "function_table", "numbers", "parser"}


def test_the_parser_never_imports_the_engine() -> None:
    bad = []
    parser_side = [*sorted((SRC / "promql" / "parser").glob("*.py")), SRC / "promql" / "function_table.py"]
    assert len(parser_side) > 5
    for p in parser_side:
        for node in ast.walk(ast.parse(p.read_text())):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if module is not None and module.startswith("signalfire.promql"):
                parts = module.split(".")
                names = [parts[2]] if len(parts) > 2 else [a.name for a in node.names]  # type: ignore[attr-defined]
                bad += [f"{p.name} imports promql.{n}" for n in names if n not in _PARSER_SIDE_MAY_IMPORT]
    assert not bad, "\n".join(bad)


def test_public_names_resolve() -> None:
    for name in signalfire.__all__:
        assert hasattr(signalfire, name), name
    for pkg in ("labels", "storage", "tsdb", "exposition", "metrics", "promql", "promql.parser"):
        m = importlib.import_module(f"signalfire.{pkg}")
        for name in getattr(m, "__all__", []):
            assert hasattr(m, name), f"signalfire.{pkg}.{name}"


#: Packages whose ``__init__`` is their whole surface: no module of another package
#: reaches into their modules (their own tests and the benches of their internals may).
_BEHIND_INIT = ("tsdb",)


def test_other_packages_use_the_package_surface_only() -> None:
    bad = []
    for p in sorted(SRC.rglob("*.py")):
        parts = p.relative_to(SRC.parent).parts
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                mods = [node.module or ""]
            else:
                continue
            for pkg in _BEHIND_INIT:
                if parts[:2] == ("signalfire", pkg):
                    continue
                bad += [f"{'/'.join(parts)} imports {m}" for m in mods if m.startswith(f"signalfire.{pkg}.")]
    assert not bad, "\n".join(bad)
