"""The batch a scrape body parses into, and the builder both parsers fill.

A parse produces one :class:`ParsedScrape`: per-sample label sets and raw series
keys as lists, values/timestamps as numpy arrays. Everything after the parser
(relabelling, the scrape cache, ``Appender.append_batch``) works on these arrays.
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from signalfire._types import F64, I64, Bool
from signalfire.errors import ExpositionParseError
from signalfire.labels import Labels

#: Prometheus's canonical NaN (``value.NormalNaN``): every scraped NaN gets these bits,
#: so no scraped value can be mistaken for the staleness marker (``...0002``).
NORMAL_NAN_BITS = 0x7FF8000000000001
NORMAL_NAN: float = float(np.array([NORMAL_NAN_BITS], dtype=np.uint64).view(np.float64)[0])

#: Metric types, as Prometheus's ``model.MetricType`` spells them.
METRIC_TYPES = ("counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown")

_intern = sys.intern

#: Series text (with the normalised label, if any) -> label set; see ``parse_text(label_cache=)``.
LabelCache = MutableMapping[object, Labels]


@dataclass(frozen=True, slots=True)
class MetricMetadata:
    """HELP, TYPE and UNIT of one metric family (``type`` uses Prometheus's names, untyped = "unknown")."""

    type: str = "unknown"
    help: str = ""
    unit: str = ""


class Exemplar(NamedTuple):
    """An OpenMetrics exemplar attached to sample ``sample_idx`` of the batch; ``ts`` in ms or None."""

    sample_idx: int
    labels: Labels
    value: float
    ts: int | None = None


@dataclass(frozen=True, slots=True)
class ParsedScrape:
    """One scrape body as a batch of N samples, in input order.

    - ``labels[i]``: the sample's label set, ``__name__`` included, ``le``/``quantile``
      normalised to float form as Prometheus 3.x does;
    - ``keys[i]``: the raw series text (``name{labels}`` as written), the key of a
      per-target scrape cache;
    - ``values``: float64[N], NaNs canonical (``NORMAL_NAN``);
    - ``timestamps``: int64[N] ms; where ``has_timestamp`` is False it holds the
      ``default_ts`` given to the parser (0 when none);
    - ``start_timestamps``: int64[N] ms from OpenMetrics ``_created`` lines, 0 = none;
    - ``metadata``: family name -> :class:`MetricMetadata`;
    - ``exemplars``: one :class:`Exemplar` per sample that carried one.

    The arrays are owned by the result and may be modified by the caller.
    """

    labels: list[Labels]
    keys: list[bytes]
    values: F64
    timestamps: I64
    has_timestamp: Bool
    start_timestamps: I64
    metadata: dict[str, MetricMetadata] = field(default_factory=dict)
    exemplars: list[Exemplar] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


class ScrapeBuilder:
    """Accumulates samples line by line, then :meth:`build` turns them into arrays once."""

    __slots__ = (
        "_help",
        "_order",
        "_type",
        "_unit",
        "exemplars",
        "keys",
        "labels",
        "line_nos",
        "start_ts",
        "ts",
        "values",
    )

    def __init__(self) -> None:
        self.labels: list[Labels] = []
        self.keys: list[str] = []
        self.values: list[float] = []
        self.ts: list[int | None] = []
        self.start_ts: list[int] = []
        self.line_nos: list[int] = []
        self.exemplars: list[Exemplar] = []
        self._help: dict[str, str] = {}
        self._type: dict[str, str] = {}
        self._unit: dict[str, str] = {}
        self._order: dict[str, None] = {}  # families in order of their first metadata line

    def set_help(self, name: str, text: str) -> None:
        self._order.setdefault(name)
        self._help[name] = text

    def set_type(self, name: str, typ: str) -> None:
        self._order.setdefault(name)
        self._type[name] = typ

    def set_unit(self, name: str, unit: str) -> None:
        self._order.setdefault(name)
        self._unit[name] = unit

    def type_of(self, name: str) -> str:
        """The TYPE recorded for family ``name`` ("unknown" when none)."""
        return self._type.get(name, "unknown")

    def build(self, default_ts: int | None) -> ParsedScrape:
        n = len(self.values)
        values = np.array(self.values, dtype=np.float64) if n else np.empty(0, dtype=np.float64)
        # Scraped NaNs are canonicalised so they never alias the staleness marker.
        values[np.isnan(values)] = NORMAL_NAN
        if n and None not in self.ts:  # every line has its own timestamp (backfill files)
            has_ts = np.ones(n, np.bool_)
            ts = np.array(self.ts, dtype=np.int64)
        else:
            has_ts = np.fromiter((t is not None for t in self.ts), dtype=np.bool_, count=n)
            fill = 0 if default_ts is None else int(default_ts)
            ts = np.fromiter((fill if t is None else t for t in self.ts), dtype=np.int64, count=n)
        metadata = {
            _intern(name): MetricMetadata(
                self._type.get(name, "unknown"), self._help.get(name, ""), self._unit.get(name, "")
            )
            for name in self._order
        }
        return ParsedScrape(
            labels=self.labels,
            keys=[k.encode("utf-8", "surrogateescape") for k in self.keys],
            values=values,
            timestamps=ts,
            has_timestamp=has_ts,
            start_timestamps=np.array(self.start_ts, dtype=np.int64) if n else np.empty(0, dtype=np.int64),
            metadata=metadata,
            exemplars=self.exemplars,
        )


__all__ = [
    "METRIC_TYPES",
    "NORMAL_NAN",
    "Exemplar",
    "ExpositionParseError",
    "LabelCache",
    "MetricMetadata",
    "ParsedScrape",
    "ScrapeBuilder",
]
