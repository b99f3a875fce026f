"""The ``signalfire`` command: argument parsing, dispatch and exit codes.

Subcommands follow promtool's names and flags (``check metrics``, ``tsdb list|analyze|dump|
dump-openmetrics|create-blocks-from openmetrics``), so a Prometheus user's scripts keep
working. Without a subcommand, signalfire runs its embedded default job (:mod:`.demo`).

Exit codes are promtool's: 0 success, 1 failure, 3 lint problems (``check metrics``);
2 is argparse's usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from signalfire import __version__

SUCCESS = 0
FAILURE = 1
LINT_ERROR = 3

_MIN_INT64 = -(2**63)
_MAX_INT64 = 2**63 - 1
DEFAULT_MATCH = "{__name__=~'(?s:.*)'}"


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str, description: str = ""
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` description repeats its one-line help unless given
    (promtool's kingpin shows the same text in both places)."""
    return sub.add_parser(name, help=help, description=description or help)


def _add_db_path(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "db_path", nargs="?", default="data/", metavar="db path", help="Database path (default is data/)."
    )


def _add_dump_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sandbox-dir-root",
        default="",
        help="Root directory for the sandbox directory the WAL is copied into and replayed from.",
    )
    p.add_argument("--min-time", type=int, default=_MIN_INT64, help="Minimum timestamp to dump.")
    p.add_argument("--max-time", type=int, default=_MAX_INT64, help="Maximum timestamp to dump.")
    p.add_argument(
        "--match",
        action="append",
        default=None,
        metavar="SELECTOR",
        help=f"Series selector. Can be specified multiple times. Default {DEFAULT_MATCH}.",
    )
    _add_db_path(p)


def _add_human_quiet(p: argparse.ArgumentParser, default: object) -> None:
    p.add_argument(
        "-r", "--human-readable", action="store_true", default=default, help="Print human readable values."
    )
    p.add_argument("-q", "--quiet", action="store_true", default=default, help="Do not print created blocks.")


def _tsdb_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tsdb = _command(sub, "tsdb", "Run tsdb commands.")
    tsub = tsdb.add_subparsers(dest="tsdb_command", metavar="<command>")
    tsub.required = True

    p = _command(tsub, "list", "List tsdb blocks.")
    p.add_argument("-r", "--human-readable", action="store_true", help="Print human readable values.")
    _add_db_path(p)

    p = _command(tsub, "analyze", "Analyze churn, label pair cardinality and compaction efficiency.")
    p.add_argument("--limit", type=int, default=20, help="How many items to show in each list.")
    p.add_argument("--extended", action="store_true", help="Run extended analysis.")
    p.add_argument(
        "--match", default="", help="Series selector to analyze. Only 1 set of matchers is supported now."
    )
    _add_db_path(p)
    p.add_argument(
        "block_id",
        nargs="?",
        default="",
        metavar="block id",
        help="Block to analyze (default is the last block).",
    )

    p = _command(tsub, "dump", "Dump samples from a TSDB.")
    _add_dump_flags(p)
    p = _command(
        tsub,
        "dump-openmetrics",
        "[Experimental] Dump samples from a TSDB into OpenMetrics text format.",
        "[Experimental] Dump samples from a TSDB into OpenMetrics text format, "
        "excluding native histograms and staleness markers, which are not representable in OpenMetrics.",
    )
    _add_dump_flags(p)

    cbf = _command(
        tsub, "create-blocks-from", "[Experimental] Import samples from input and produce TSDB blocks."
    )
    _add_human_quiet(cbf, False)
    csub = cbf.add_subparsers(dest="from_format", metavar="<command>")
    csub.required = True
    om = _command(csub, "openmetrics", "Import samples from OpenMetrics input and produce TSDB blocks.")
    # SUPPRESS keeps the subcommand's copy of -r/-q from overwriting the parent's value.
    _add_human_quiet(om, argparse.SUPPRESS)
    om.add_argument(
        "--max-block-duration",
        default="0s",
        metavar="DURATION",
        help="Maximum duration created blocks may span. Anything less than 2h is ignored.",
    )
    om.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="Label to attach to metrics. Can be specified multiple times. Example --label=name=value",
    )
    om.add_argument("input_file", metavar="input file", help="OpenMetrics file to read samples from.")
    om.add_argument(
        "output_dir",
        nargs="?",
        default="data/",
        metavar="output directory",
        help="Output directory for generated blocks.",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; ``docs/command-line/signalfire.md`` documents every flag here."""
    p = argparse.ArgumentParser(
        prog="signalfire",
        description="Prometheus-compatible monitoring. Without a command, loads a bundled sample into "
        "the storage path and prints what was stored.",
    )
    p.add_argument("--version", action="version", version=f"signalfire {__version__}")
    p.add_argument(
        "--storage.tsdb.path",
        dest="storage_tsdb_path",
        default="data/",
        help="Base path for metrics storage.",
    )
    p.add_argument(
        "--sample-file",
        default="",
        metavar="FILE",
        help="OpenMetrics file to load instead of the bundled sample (default job only).",
    )
    sub = p.add_subparsers(dest="command", metavar="<command>")

    check = _command(sub, "check", "Check the resources for validity.")
    csub = check.add_subparsers(dest="check_command", metavar="<command>")
    csub.required = True
    m = _command(
        csub, "metrics", "Pass Prometheus metrics over stdin to lint them for consistency and correctness."
    )
    m.add_argument(
        "--extended",
        action="store_true",
        help="Print extended information related to the cardinality of the metrics.",
    )

    _tsdb_parser(sub)
    return p


def _dispatch(args: argparse.Namespace) -> int:
    # Imported lazily: `signalfire --version` and `--help` must not pay for numpy-heavy modules.
    if args.command is None:
        from signalfire.cli.demo import run_default

        return run_default(args.storage_tsdb_path, args.sample_file or None)
    if args.command == "check":
        from signalfire.cli.check import check_metrics

        return check_metrics(sys.stdin.buffer, extended=args.extended)
    from signalfire.cli import backfill, tsdb

    table: dict[str, Callable[[argparse.Namespace], int]] = {
        "list": tsdb.cmd_list,
        "analyze": tsdb.cmd_analyze,
        "dump": tsdb.cmd_dump,
        "dump-openmetrics": tsdb.cmd_dump_openmetrics,
        "create-blocks-from": backfill.cmd_create_blocks_from,
    }
    return table[args.tsdb_command](args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the process exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `signalfire tsdb dump | head` closes our stdout early; that is not an error.
        return SUCCESS


if __name__ == "__main__":
    sys.exit(main())
