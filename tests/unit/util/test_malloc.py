"""The heap tuning is applied once, can be turned off, and never fails an import."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_PROBE = "import signalfire.util.malloc as m; print(m.keep_freed_memory(), m.keep_freed_memory())"


def _probe(env_value: str | None) -> str:
    env = dict(os.environ)
    env.pop("SIGNALFIRE_MALLOC_TUNE", None)
    if env_value is not None:
        env["SIGNALFIRE_MALLOC_TUNE"] = env_value
    return subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_applied_once_on_glibc():
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert _probe(None) == "True True"


def test_turned_off_by_environment():
    assert _probe("0") == "False False"
