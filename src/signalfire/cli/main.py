"""The ``signalfire`` command: argument parsing and dispatch."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from signalfire import __version__


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="signalfire", description="Prometheus-compatible monitoring")
    p.add_argument("--version", action="version", version=f"signalfire {__version__}")
    p.add_subparsers(dest="command")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
