"""The result of a query, as the library, the HTTP API and tests consume it.

``values[S, T]`` + ``present[S, T]`` over ``timestamps[T]`` for vectors and matrices;
for an instant query whose top node is a range vector, the ragged ``series``.
``to_json()`` gives the ``data`` object of Prometheus's ``/api/v1/query[_range]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from signalfire._types import F64, I64, Bool
from signalfire.labels import Labels
from signalfire.promql.stats import QueryStats
from signalfire.storage import SeriesSet


def format_value(v: float) -> str:
    """A float as Prometheus's API writes it (Go ``strconv.FormatFloat(v, 'f', -1, 64)``)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return np.format_float_positional(v, unique=True, trim="-")


def format_ts(t_ms: int) -> float | int:
    """A timestamp in seconds: an int when whole, else up to millisecond decimals."""
    return t_ms // 1000 if t_ms % 1000 == 0 else t_ms / 1000.0


@dataclass(slots=True)
class QueryResult:
    """One query's answer.

    ``result_type`` is ``vector``, ``matrix``, ``scalar`` or ``string``. For vectors
    T == 1; for a scalar there is one row with no labels; for a string ``string`` is
    set. ``series`` is set (and ``values`` is empty) for an instant query of a range
    vector. Vector rows keep evaluation order (``sort()``, ``topk``); matrix rows are
    sorted by labels.
    """

    result_type: str
    labels: list[Labels]
    values: F64  # float64[S, T]
    present: Bool  # bool[S, T]
    timestamps: I64  # int64[T]
    series: SeriesSet | None = None
    string_value: str | None = None
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    stats: QueryStats = field(default_factory=QueryStats)

    @property
    def scalar(self) -> float:
        """The value of a scalar result (instant query)."""
        if self.result_type != "scalar":
            raise TypeError(f"result is a {self.result_type}, not a scalar")
        return float(self.values[0, -1])

    @property
    def string(self) -> str:
        if self.result_type != "string" or self.string_value is None:
            raise TypeError(f"result is a {self.result_type}, not a string")
        return self.string_value

    def __len__(self) -> int:
        return len(self.labels)

    def to_json(self) -> dict[str, Any]:
        """``{"resultType": ..., "result": ...}`` exactly as Prometheus's API shapes it."""
        rt = self.result_type
        if rt == "scalar":
            t = int(self.timestamps[-1])
            return {"resultType": rt, "result": [format_ts(t), format_value(float(self.values[0, -1]))]}
        if rt == "string":
            t = int(self.timestamps[-1])
            return {"resultType": rt, "result": [format_ts(t), self.string_value]}
        out: list[dict[str, Any]] = []
        if rt == "vector":
            tv = format_ts(int(self.timestamps[-1]))
            for i, ls in enumerate(self.labels):
                if self.present[i, -1]:
                    out.append({"metric": dict(ls), "value": [tv, format_value(float(self.values[i, -1]))]})
            return {"resultType": rt, "result": out}
        if self.series is not None:
            ss = self.series
            for i, ls in enumerate(ss.labels):
                _, ts, vs = ss.series(i)
                pts = [[format_ts(int(a)), format_value(float(b))] for a, b in zip(ts.tolist(), vs.tolist())]
                out.append({"metric": dict(ls), "values": pts})
            return {"resultType": rt, "result": out}
        tss = [format_ts(int(t)) for t in self.timestamps.tolist()]
        for i, ls in enumerate(self.labels):
            cols = np.flatnonzero(self.present[i]).tolist()
            vals = self.values[i]
            out.append({"metric": dict(ls), "values": [[tss[j], format_value(float(vals[j]))] for j in cols]})
        return {"resultType": rt, "result": out}

    def to_pandas(self) -> Any:
        """A DataFrame: one column per series (named by its labels), indexed by time.

        Absent points are NaN here (pandas has no separate mask); use ``present`` when a
        NaN value must be told apart from a missing point. Needs the ``pandas`` extra.
        """
        import pandas as pd

        if self.series is not None:
            frames = {}
            for i, ls in enumerate(self.series.labels):
                _, ts, vs = self.series.series(i)
                frames[str(ls)] = pd.Series(vs, index=pd.to_datetime(ts, unit="ms", utc=True))
            return pd.DataFrame(frames)
        if self.result_type == "string":
            return pd.DataFrame({"value": [self.string_value]})
        data = np.where(self.present, self.values, np.nan).T
        index = pd.to_datetime(self.timestamps, unit="ms", utc=True)
        names = ["{}" if len(ls) == 0 else str(ls) for ls in self.labels]
        return pd.DataFrame(data, index=index, columns=names)
