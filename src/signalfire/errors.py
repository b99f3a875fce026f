"""The one exception tree of signalfire.

::

    SignalfireError                  error_type "internal"
    ├── BadDataError                 "bad_data"   user input that cannot be accepted
    │   ├── ParseError               with position (line, column / offset), expected, found
    │   │   ├── ExpositionParseError scrape body; line and column
    │   │   └── PromQLParseError     query text; byte offset, line:col
    │   └── ConfigError              file, line and key path
    ├── QueryError                   "execution"  evaluation failed
    │   ├── QueryTimeoutError        "timeout"
    │   ├── QueryCanceledError       "canceled"
    │   ├── TooManySamplesError      "execution"  --query.max-samples reached
    │   └── TooManyStepsError        "execution"  more evaluation steps than the engine's max_steps
    ├── StorageError                 "internal"
    │   ├── CorruptionError          file and offset of the damage
    │   ├── OutOfBoundsError         sample before the head's appendable window
    │   └── LockedError              data folder held by another process
    └── NotFoundError                "not_found"

Each class carries ``error_type``, the Prometheus HTTP API error type it maps to.
"""

from __future__ import annotations


class SignalfireError(Exception):
    """Base of every error signalfire raises on purpose."""

    error_type = "internal"


class BadDataError(SignalfireError):
    """Input from a user or a peer that cannot be accepted."""

    error_type = "bad_data"


class ParseError(BadDataError):
    """Input text that does not follow its grammar. ``line``/``column`` are 1-based."""

    def __init__(
        self,
        message: str,
        *,
        line: int = 0,
        column: int = 0,
        offset: int = -1,
        expected: str = "",
        found: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.offset = offset
        self.expected = expected
        self.found = found


class ExpositionParseError(ParseError):
    """A malformed scrape body (text format or OpenMetrics)."""

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.message}"


class PromQLParseError(ParseError):
    """A malformed PromQL expression; ``offset`` is the byte offset in the query."""


class ConfigError(BadDataError):
    """An invalid configuration or rule file."""


class QueryError(SignalfireError):
    """A query that failed while being evaluated."""

    error_type = "execution"


class QueryTimeoutError(QueryError):
    error_type = "timeout"


class QueryCanceledError(QueryError):
    error_type = "canceled"


class TooManySamplesError(QueryError):
    """The query would load more samples than ``--query.max-samples`` allows."""

    def __init__(
        self, message: str = "query processing would load too many samples into memory in query execution"
    ) -> None:
        super().__init__(message)


class TooManyStepsError(QueryError):
    """A query (or a subquery) would be evaluated at more steps than the engine's ``max_steps``."""


class StorageError(SignalfireError):
    """Storage failed for a reason that is not the caller's input."""


class CorruptionError(StorageError):
    """Damaged bytes on disk; names the file and the byte offset where reading stopped."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(f"corruption in {path} at offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


class OutOfBoundsError(StorageError):
    error_type = "bad_data"


class LockedError(StorageError):
    """The data folder is locked by another process (see ``--storage.tsdb.no-lockfile``)."""


class NotFoundError(SignalfireError):
    error_type = "not_found"
