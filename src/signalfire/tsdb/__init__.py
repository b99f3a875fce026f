"""The time-series database: head, WAL, blocks, compaction, retention, snapshots.

``open_db(path, DBOptions(...))`` gives a :class:`DB` (an Appendable and a Queryable).
"""

from signalfire.tsdb.db import DB, blocks_available, open_db
from signalfire.tsdb.head import Head
from signalfire.tsdb.head_append import HeadAppender
from signalfire.tsdb.head_read import HeadQuerier
from signalfire.tsdb.options import DBOptions, FsyncPolicy

__all__ = [
    "DB",
    "DBOptions",
    "FsyncPolicy",
    "Head",
    "HeadAppender",
    "HeadQuerier",
    "blocks_available",
    "open_db",
]
