"""The bundled OpenMetrics sample is what its generator writes, and promtool-valid in shape."""

from __future__ import annotations

from signalfire.cli.demo import bundled_sample, sample_text
from signalfire.exposition import parse


def test_bundled_sample_matches_generator() -> None:
    # Regenerate with: python -m signalfire.cli.demo src/signalfire/data/sample.om
    assert bundled_sample().decode("utf-8") == sample_text()


def test_bundled_sample_parses_with_timestamps() -> None:
    scrape = parse(bundled_sample(), "application/openmetrics-text; version=1.0.0")
    assert len(scrape) == 3726
    assert bool(scrape.has_timestamp.all())
    assert len(set(scrape.labels)) == 46
    assert scrape.metadata["http_request_duration_seconds"].type == "histogram"
