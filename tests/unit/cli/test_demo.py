"""The default job: ``signalfire`` with no command loads the bundled sample and reports on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from signalfire.cli.main import main


def test_default_job_loads_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert main(["--storage.tsdb.path", str(data)]) == 0
    out = capsys.readouterr().out
    assert "appended 3726 samples (0 already stored)" in out
    assert "stored: 46 series, 3726 samples" in out
    assert "(20.1 min)" in out
    assert 'up{instance="app-1:8080", job="demo"} = 1' in out or "up{" in out
    assert "sum by (instance) (rate(http_requests_total[5m]))" in out
    assert '{instance="app-1:8080"} => ' in out and '{instance="app-2:8080"} => ' in out
    # A second run in the same scrape step finds everything already stored.
    assert main(["--storage.tsdb.path", str(data)]) == 0
    again = capsys.readouterr().out
    assert "stored: 46 series" in again


def test_default_job_as_a_process(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "signalfire"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert "stored: 46 series" in r.stdout
    assert (tmp_path / "data").is_dir()  # the default --storage.tsdb.path
