"""The time-series database: head, WAL, blocks, compaction, retention, snapshots.

``open_db(path, DBOptions(...))`` gives a :class:`DB` (an Appendable and a Queryable):
``appender()``, ``querier(mint, maxt)``, ``delete``, ``compact``, ``snapshot``, ``close``.
Blocks can also be written and read directly (``write_block``, ``Block.open``), as the
CLI's ``tsdb`` commands and backfilling do.
"""

from signalfire.tsdb.block import Block, BlockMeta, BlockQuerier, write_block
from signalfire.tsdb.compact import compact_blocks, plan_compaction
from signalfire.tsdb.db import DB, blocks_available, open_db
from signalfire.tsdb.head import Head
from signalfire.tsdb.head_append import HeadAppender
from signalfire.tsdb.head_read import HeadQuerier
from signalfire.tsdb.options import DBOptions, FsyncPolicy
from signalfire.tsdb.retention import blocks_to_delete

__all__ = [
    "DB",
    "Block",
    "BlockMeta",
    "BlockQuerier",
    "DBOptions",
    "FsyncPolicy",
    "Head",
    "HeadAppender",
    "HeadQuerier",
    "blocks_available",
    "blocks_to_delete",
    "compact_blocks",
    "open_db",
    "plan_compaction",
    "write_block",
]
