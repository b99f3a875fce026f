"""The heap tuning is applied once, can be turned off, and never fails an import."""

from __future__ import annotations

import os
import platform
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


_GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not _GLIBC, reason="mallopt and malloc_trim are glibc's")
def test_applied_once_on_glibc():
    assert _probe(None) == "True True"


def test_turned_off_by_environment():
    assert _probe("0") == "False False"


@pytest.mark.skipif(not _GLIBC, reason="mallopt and malloc_trim are glibc's")
def test_release_free_memory_gives_back_a_freed_block():
    """After a large block is freed with the thresholds raised, it stays resident until
    release_free_memory() hands it back."""
    code = (
        "import numpy as np, signalfire.util.malloc as m\n"
        "def rss():\n"
        "    return int(open('/proc/self/statm').read().split()[1]) * 4096\n"
        "m.keep_freed_memory()\n"
        "a = np.ones(1 << 25); del a\n"  # 256 MiB, freed into the heap
        "kept = rss()\n"
        "m.release_free_memory()\n"
        "print(kept - rss() > 100 << 20)\n"
    )
    env = dict(os.environ)
    env.pop("SIGNALFIRE_MALLOC_TUNE", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


_OPEN = (
    "import sys, tempfile, numpy as np, signalfire, signalfire.util.malloc as m\n"
    "def rss():\n"
    "    return int(open('/proc/self/statm').read().split()[1]) * 4096\n"
    "db = signalfire.open(tempfile.mkdtemp(), **eval(sys.argv[1]))\n"
    "a = np.ones(1 << 25); before = rss(); del a\n"  # 256 MiB, then freed
    "print(m.tuning_state(), before - rss() > 100 << 20)\n"
    "db.close()\n"
)


def _open_probe(kwargs: str) -> str:
    env = dict(os.environ)
    env.pop("SIGNALFIRE_MALLOC_TUNE", None)
    return subprocess.run(
        [sys.executable, "-c", _OPEN, kwargs], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_open_leaves_the_allocator_alone_by_default():
    """A library must not change process-wide settings: ``signalfire.open()`` never calls
    mallopt unless asked, and a freed large block goes back to the kernel at once."""
    assert _open_probe("{}") == ("None True" if _GLIBC else "None False")


@pytest.mark.skipif(not _GLIBC, reason="mallopt and malloc_trim are glibc's")
def test_open_tunes_the_allocator_when_asked():
    assert _open_probe("{'keep_freed_memory': True}") == "True False"
