"""Generate the pages code defines: ``docs/command-line/signalfire.md`` from the argument
parser, ``docs/self-metrics.md`` from the metrics registry of an opened database.

Prometheus generates its command-line docs from its flag definitions and a test diffs
them against the committed page; we do the same, so a flag or a self metric cannot be
added without being documented. Regenerate with
``python -m signalfire.cli.docs > docs/command-line/signalfire.md`` and
``python -m signalfire.cli.docs self-metrics > docs/self-metrics.md``.
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


SELF_METRICS_HEADER = """---
title: Self metrics
---

# Self metrics

signalfire measures itself with Prometheus's metric names, prefixed `signalfire_` instead
of `prometheus_` (`signalfire_tsdb_head_series` is `prometheus_tsdb_head_series`), with
the same types, units and `_total` suffixes, so Prometheus's dashboards and alerts for
itself work after a rename.

Each part registers its metrics in a `signalfire.metrics.Registry` it is handed, never in
a global one: `signalfire.open(path)` gives the database its own (`db.metrics`, rendered by
`db.render_metrics()` or `db.metrics.render(openmetrics=True)`), `signalfire.open(path,
registry=r)` puts them into `r`, and a server hands one registry to all its parts. Two
databases in one process have independent metrics.

Counters, gauges and histograms are updated once per batch (a commit, a compaction, a
scrape), never per sample. Figures a component already holds (series in the head, blocks
loaded, the head's sample outcome counters) are read by a collector when the registry is
rendered, so nothing is kept in sync by hand. The tsdb collector reads the head under a
short lock and walks block directories after it, so a scrape never holds up appends on disk
I/O.

This table is generated from the registry of an opened database
(`python -m signalfire.cli.docs self-metrics > docs/self-metrics.md`) and a test keeps it
current.

| Metric | Type | Labels | Help |
| --- | --- | --- | --- |
"""


def self_metrics_markdown() -> str:
    """``docs/self-metrics.md``: every family an opened database registers."""
    import tempfile

    import signalfire

    with tempfile.TemporaryDirectory() as d, signalfire.open(d) as db:
        descs = db.metrics.describe()
    rows = []
    for m in descs:
        labels = [f'`{n}="{v}"`' for n, v in m.const_labels] + [f"`{n}`" for n in m.labelnames]
        if m.type == "histogram":
            labels.append("`le`")
        rows.append(f"| `{m.name}` | {m.type} | {', '.join(labels)} | {_cell(m.help)} |")
    return SELF_METRICS_HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    page = self_metrics_markdown() if sys.argv[1:] == ["self-metrics"] else command_line_markdown()
    sys.stdout.write(page)
