"""Shared fixtures."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist's controller never collects, so it never loads tests/conformance/conftest.py:
    # register the conformance summary (per-file passed / total) here as well.
    from conformance.summary import register

    register(config)
