"""Generate ``docs/command-line/signalfire.md`` from the argument parser.

Prometheus generates its command-line docs from its flag definitions and a test diffs
them against the committed page; we do the same, so a flag cannot be added without
being documented. Regenerate with ``python -m signalfire.cli.docs > docs/command-line/signalfire.md``.
"""

from __future__ import annotations

import argparse
import sys

from signalfire.cli.main import build_parser

HEADER = """---
title: signalfire
---

# signalfire

The `signalfire` command. Its `check` and `tsdb` subcommands take promtool's names, flags
and arguments and print what promtool prints, so scripts written for `promtool` work with
`signalfire`. Exit codes: 0 success, 1 failure, 2 usage error, 3 lint problems
(`check metrics`).

Without a command, `signalfire` runs its default job: it loads the bundled OpenMetrics
sample (or `--sample-file`) into `--storage.tsdb.path`, with timestamps shifted so the
sample ends now, and prints what was stored and the result of a PromQL query.

Where the `tsdb` commands differ from promtool 2.42/3.x:

- `tsdb create-blocks-from openmetrics` parses the file once instead of once per block
  window, and accepts the samples of a series in any order (promtool needs them in time
  order); an identical repeated sample is dropped, a different value at the same timestamp
  fails as in Prometheus ("duplicate sample for timestamp"). Label values `le` and
  `quantile` are normalised as Prometheus 3 does (`1` becomes `1.0`).
- `tsdb analyze` breaks ties in its top lists by name (Go's order is random). A signalfire
  chunk is a column of many series, so `--extended` prints the block's chunk count, samples
  per chunk and bytes per sample, and promtool's histogram layout over samples per series.
- `tsdb dump-openmetrics` leaves staleness markers out: OpenMetrics cannot tell them from
  a NaN sample.
- `tsdb dump` reads blocks read-only and the head from a copy of the WAL replayed in a
  sandbox folder (under `--sandbox-dir-root`), as promtool does, so a folder in use by a
  running signalfire is never locked or written.

"""


def _subparsers(p: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    out: list[tuple[str, argparse.ArgumentParser]] = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            out.extend(action.choices.items())
    return out


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def _default(a: argparse.Action) -> str:
    if a.default in (None, False, argparse.SUPPRESS, [], "") or isinstance(a, argparse._VersionAction):
        return ""
    return f"`{a.default}`"


def _section(path: str, p: argparse.ArgumentParser) -> list[str]:
    lines = [f"## `{path}`", ""]
    if p.description:
        lines += [p.description, ""]
    flags = [a for a in p._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
    args = [a for a in p._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]
    if flags:
        lines += ["### Flags", "", "| Flag | Description | Default |", "| --- | --- | --- |"]
        for a in flags:
            names = ", ".join(f'<code class="text-nowrap">{o}</code>' for o in a.option_strings)
            lines.append(f"| {names} | {_cell(a.help)} | {_default(a)} |")
        lines.append("")
    if args:
        lines += ["### Arguments", "", "| Argument | Description | Required |", "| --- | --- | --- |"]
        for a in args:
            lines.append(f"| {a.metavar or a.dest} | {_cell(a.help)} | {'' if a.nargs == '?' else 'Yes'} |")
        lines.append("")
    subs = _subparsers(p)
    if subs:
        lines += ["### Commands", "", "| Command | Description |", "| --- | --- |"]
        lines += [f"| `{name}` | {_cell(sp.description)} |" for name, sp in subs]
        lines.append("")
    for name, sp in subs:
        lines += _section(f"{path} {name}", sp)
    return lines


def command_line_markdown() -> str:
    """The whole page, one section per command, flags and arguments in tables."""
    return HEADER + "\n".join(_section("signalfire", build_parser())).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(command_line_markdown())
