"""The time-series database: head, WAL, blocks, compaction, retention, snapshots.

``open_db(path, DBOptions(...))`` gives a :class:`DB` (an Appendable and a Queryable):
``appender()``, ``querier(mint, maxt)``, ``delete``, ``compact``, ``snapshot``, ``close``.
Blocks can also be written and read directly (``write_block``, ``Block.open``), as the
CLI's ``tsdb`` commands and backfilling do.

That is the package's surface; the head, the WAL, the codecs and compaction are
internals, which only this package's modules (and their tests) import.
"""

from signalfire.tsdb.block import Block, write_block
from signalfire.tsdb.block_meta import BlockMeta
from signalfire.tsdb.db import DB, open_db
from signalfire.tsdb.options import DBOptions, FsyncPolicy

__all__ = [
    "DB",
    "Block",
    "BlockMeta",
    "DBOptions",
    "FsyncPolicy",
    "open_db",
    "write_block",
]
