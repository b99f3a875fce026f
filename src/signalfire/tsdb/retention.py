"""Retention: which blocks to delete by age and by total size (Prometheus semantics).

Both rules walk the blocks from newest to oldest (by ``min_time``):

* time (``--storage.tsdb.retention.time``): once a block's ``max_time`` lies
  ``retention_ms`` or more behind the reference time, it and every older block go.
  The reference is the newest block's ``max_time`` (Prometheus ``BeyondTimeRetention``;
  the newest block itself is never dropped by time), or ``now_maxt`` when given;
* size (``--storage.tsdb.retention.size``): starting from ``head_bytes`` (the head
  and WAL), add block sizes newest first; the first block that takes the total past
  ``max_bytes`` and every older block go (``BeyondSizeRetention``).
"""

from __future__ import annotations

from collections.abc import Sequence

from signalfire.tsdb.block_meta import BlockMeta


def blocks_to_delete(
    metas_with_sizes: Sequence[tuple[BlockMeta, int]],
    *,
    retention_ms: int | None,
    max_bytes: int | None,
    now_maxt: int | None = None,
    head_bytes: int = 0,
) -> list[str]:
    """ULIDs of the blocks that retention removes, oldest first.

    ``retention_ms`` / ``max_bytes`` of None or <= 0 disable that rule. Sizes are in
    bytes (``Block.size_bytes()``), times in ms.
    """
    newest_first = sorted(metas_with_sizes, key=lambda ms: (ms[0].min_time, ms[0].ulid), reverse=True)
    doomed: set[str] = set()
    if retention_ms and retention_ms > 0 and newest_first:
        ref = now_maxt if now_maxt is not None else newest_first[0][0].max_time
        start = 0 if now_maxt is not None else 1
        for i in range(start, len(newest_first)):
            if ref - newest_first[i][0].max_time >= retention_ms:
                doomed.update(m.ulid for m, _ in newest_first[i:])
                break
    if max_bytes and max_bytes > 0:
        total = head_bytes
        for i, (_, size) in enumerate(newest_first):
            total += size
            if total > max_bytes:
                doomed.update(m.ulid for m, _ in newest_first[i:])
                break
    return [m.ulid for m, _ in reversed(newest_first) if m.ulid in doomed]
