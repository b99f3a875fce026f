"""Argument parsing and dispatch of the ``signalfire`` command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from signalfire import __version__
from signalfire.cli.main import build_parser, main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"signalfire {__version__}"


def test_python_dash_m() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "signalfire", "--version"], capture_output=True, text=True, check=True
    )
    assert r.stdout.strip() == f"signalfire {__version__}"


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        (["tsdb", "list", "-r", "d/"], {"tsdb_command": "list", "human_readable": True, "db_path": "d/"}),
        (["tsdb", "list"], {"db_path": "data/", "human_readable": False}),
        (
            ["tsdb", "analyze", "--limit", "5", "d", "01ABC"],
            {"limit": 5, "db_path": "d", "block_id": "01ABC"},
        ),
        (
            ["tsdb", "dump", "--min-time", "5", "--match", "up", "--match", "x"],
            {"min_time": 5, "match": ["up", "x"]},
        ),
        (["tsdb", "dump-openmetrics"], {"max_time": 2**63 - 1, "match": None}),
        (
            ["tsdb", "create-blocks-from", "-r", "openmetrics", "--label", "a=b", "f.om", "out"],
            {
                "human_readable": True,
                "quiet": False,
                "label": ["a=b"],
                "input_file": "f.om",
                "output_dir": "out",
            },
        ),
        (
            ["tsdb", "create-blocks-from", "openmetrics", "-q", "--max-block-duration", "24h", "f.om"],
            {"quiet": True, "human_readable": False, "max_block_duration": "24h", "output_dir": "data/"},
        ),
        (["check", "metrics", "--extended"], {"check_command": "metrics", "extended": True}),
        ([], {"command": None, "storage_tsdb_path": "data/"}),
        (["--storage.tsdb.path", "x/"], {"storage_tsdb_path": "x/"}),
    ],
)
def test_parse(argv: list[str], want: dict[str, object]) -> None:
    args = vars(build_parser().parse_args(argv))
    assert {k: args[k] for k in want} == want


def test_unknown_subcommand_is_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["tsdb", "nope"])
    assert exc.value.code == 2
