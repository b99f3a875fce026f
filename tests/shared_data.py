"""Where the shared data lives: upstream's conformance scripts and fixtures, the bench harness.

The data sits beside the checkout (``../shared``) on the development machine, but a clean
clone may be anywhere (``git clone . /tmp/x``), so the folder is looked up rather than
derived from this file alone: ``SIGNALFIRE_SHARED_DIR`` first, then ``shared/`` next to
the checkout or any folder above it, then ``/work/shared``. Tests that need the data fail
loudly when none exists; they never skip.
"""

from __future__ import annotations

import os
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1]


def _find_shared() -> Path:
    env = os.environ.get("SIGNALFIRE_SHARED_DIR")
    candidates = [Path(env)] if env else []
    candidates += [p / "shared" for p in _CHECKOUT.parents]
    candidates.append(Path("/work/shared"))
    for c in candidates:
        if (c / "conformance").is_dir():
            return c
    return candidates[0]  # missing: the tests using it fail with this path in the error


SHARED = _find_shared()
CONFORMANCE = SHARED / "conformance"
PROMQLTEST = CONFORMANCE / "promqltest"
EXPOSITION = CONFORMANCE / "exposition"
PROMTOOL_FIXTURES = CONFORMANCE / "promtool"

__all__ = ["CONFORMANCE", "EXPOSITION", "PROMQLTEST", "PROMTOOL_FIXTURES", "SHARED"]
