"""Shared fixtures."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# CI runs the same examples every time (a red CI must be reproducible); local runs explore.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist's controller never collects, so it never loads tests/conformance/conftest.py:
    # register the conformance summary (per-file passed / total) here as well.
    from conformance.summary import register

    register(config)
