"""Storage interfaces: Appender, Querier, SeriesSet, annotations; the fanout over several stores."""

from signalfire.storage.annotations import Annotations
from signalfire.storage.fanout import FanoutQuerier, FanoutStorage
from signalfire.storage.interface import (
    Appendable,
    Appender,
    AppendStats,
    Querier,
    Queryable,
    RunsFromSelect,
    SelectHints,
)
from signalfire.storage.merge import MergeQuerier
from signalfire.storage.runs import RunSet, concat_runs
from signalfire.storage.series_set import SeriesSet, empty_series_set, series_set_from_lists

__all__ = [
    "Annotations",
    "AppendStats",
    "Appendable",
    "Appender",
    "FanoutQuerier",
    "FanoutStorage",
    "MergeQuerier",
    "Querier",
    "Queryable",
    "RunSet",
    "RunsFromSelect",
    "SelectHints",
    "SeriesSet",
    "concat_runs",
    "empty_series_set",
    "series_set_from_lists",
]
