"""The command-line page is generated from the parser: every flag is documented."""

from __future__ import annotations

from pathlib import Path

from signalfire.cli.docs import command_line_markdown, self_metrics_markdown

DOC = Path(__file__).resolve().parents[3] / "docs" / "command-line" / "signalfire.md"


def test_command_line_doc_is_current() -> None:
    # Regenerate with: python -m signalfire.cli.docs > docs/command-line/signalfire.md
    assert DOC.read_text(encoding="utf-8") == command_line_markdown()


def test_every_promtool_flag_is_there() -> None:
    text = command_line_markdown()
    for flag in (
        "--human-readable",
        "--quiet",
        "--max-block-duration",
        "--label",
        "--min-time",
        "--max-time",
        "--match",
        "--limit",
        "--extended",
        "--storage.tsdb.path",
    ):
        assert f">{flag}</code>" in text, flag


SELF_METRICS = DOC.parents[1] / "self-metrics.md"


def test_self_metrics_doc_lists_what_an_opened_database_registers() -> None:
    # Regenerate with: python -m signalfire.cli.docs self-metrics > docs/self-metrics.md
    assert SELF_METRICS.read_text(encoding="utf-8") == self_metrics_markdown()
    for name in ("signalfire_tsdb_head_series", "signalfire_tsdb_compaction_duration_seconds"):
        assert f"| `{name}` |" in SELF_METRICS.read_text(encoding="utf-8")
