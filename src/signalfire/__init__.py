"""signalfire: a Prometheus-compatible monitoring system and time-series database.

The library facade: ``signalfire.open(path)`` gives a :class:`Database` with the whole
storage engine and PromQL engine in-process.
"""

from signalfire.database import Database, DatabaseOptions, open
from signalfire.errors import (
    BadDataError,
    CorruptionError,
    ParseError,
    PromQLParseError,
    QueryError,
    SignalfireError,
    StorageError,
)
from signalfire.labels import Labels, Matcher, MatchType

__version__ = "0.1.0"

__all__ = [
    "BadDataError",
    "CorruptionError",
    "Database",
    "DatabaseOptions",
    "Labels",
    "MatchType",
    "Matcher",
    "ParseError",
    "PromQLParseError",
    "QueryError",
    "SignalfireError",
    "StorageError",
    "__version__",
    "open",
]
