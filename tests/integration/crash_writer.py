"""Writer process for test_crash.py: appends numbered batches until it is killed.

Usage: ``python crash_writer.py DATA ACKS START MODE ARM SEED``. Batch ``b`` writes
timestamp ``b * STEP`` to every one of ``S`` fixed series (values derived from ``b``, so a
checker can recompute their exact bits) and, every fifth batch, one brand-new series. After
``commit()`` returns the batch id is appended to ACKS. Every few batches ``compact()`` runs,
which cuts blocks, truncates the head and writes checkpoints.

MODE other than ``random`` kills this process with SIGKILL from inside the storage code at
the first chance after batch START + ARM: in the middle of a WAL write, before or after a
checkpoint's rename, in the middle of writing a block, right after a block's rename,
between writing a block and truncating the head, or between writing a compacted block and
deleting its parents.
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np

from signalfire.labels import Labels
from signalfire.tsdb import DBOptions, open_db

S = 40
STEP = 2_000
OPTIONS = DBOptions(
    fsync="never",  # a process crash loses nothing that reached write(); no power failure here
    wal_segment_size=16 * 1024,
    min_block_duration=60_000,
    max_block_duration=9 * 60_000,
    retention_ms=0,
)


def values_for(b: int) -> np.ndarray:
    """Exact values of batch ``b`` (random bits, NaNs and the stale marker included)."""
    v = np.random.default_rng(b).random(S)
    bits = v.view(np.uint64).copy()
    bits[b % S] = 0x7FF0000000000002  # staleness marker
    bits[(b + 1) % S] = 0x7FF8000000000001  # a NaN payload
    return bits.view(np.float64)


def series_labels() -> list[Labels]:
    return [Labels.from_strings("__name__", "crash_metric", "i", str(i)) for i in range(S)]


def fresh_labels(b: int) -> Labels:
    return Labels.from_strings("__name__", "crash_fresh", "batch", str(b))


def _die(where: str) -> None:
    sys.stderr.write(f"inject {where}\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def arm(mode: str, armed: list[bool]) -> None:
    """Patch the storage code so that ``mode`` kills the process once ``armed[0]``."""
    import signalfire.tsdb.block_write as block_write
    import signalfire.tsdb.db as db_mod
    from signalfire.tsdb.wal import segment

    def when(fn, before: bool = True):  # type: ignore[no-untyped-def]
        def wrapper(*a, **kw):  # type: ignore[no-untyped-def]
            if armed[0] and before:
                _die(mode)
            out = fn(*a, **kw)
            if armed[0] and not before:
                _die(mode)
            return out

        return wrapper

    if mode == "torn-wal":
        orig = segment.WAL._write_all

        def torn(self, data):  # type: ignore[no-untyped-def]
            if armed[0] and len(data) > 64:
                os.write(self._fd, data[: len(data) // 2])
                _die(mode)
            orig(self, data)

        segment.WAL._write_all = torn
    elif mode == "checkpoint-before-rename":
        db_mod.write_checkpoint = _kill_on_rename(db_mod.write_checkpoint, armed, mode)
    elif mode == "checkpoint-after-rename":
        segment.WAL.delete_segments_before = when(segment.WAL.delete_segments_before)
    elif mode == "block-mid-write":
        block_write.write_index = when(block_write.write_index)
    elif mode == "block-after-rename":
        # Right after a block's rename: neither the DB nor the WAL checkpoint knows it yet.
        real_fsync_dir = block_write.fsync_dir

        def fsync_then_die(path):  # type: ignore[no-untyped-def]
            real_fsync_dir(path)
            name = os.path.basename(os.fspath(path))
            if armed[0] and not name.endswith(".tmp") and name != block_write.CHUNKS_DIR:
                _die(mode)

        block_write.fsync_dir = fsync_then_die
    elif mode == "block-before-truncate":
        db_mod.DB._truncate_locked = when(db_mod.DB._truncate_locked)
    elif mode == "compaction-before-delete":
        db_mod.delete_block_dir = when(db_mod.delete_block_dir)
    elif mode != "random":
        raise SystemExit(f"unknown mode {mode}")


def _kill_on_rename(fn, armed, mode):  # type: ignore[no-untyped-def]
    def wrapper(*a, **kw):  # type: ignore[no-untyped-def]
        if not armed[0]:
            return fn(*a, **kw)
        real = os.rename

        def rename(src, dst):  # type: ignore[no-untyped-def]
            _die(mode)

        os.rename = rename
        try:
            return fn(*a, **kw)
        finally:
            os.rename = real

    return wrapper


def main() -> None:
    import signalfire.tsdb.block_write as block_write

    # Small value chunks, so a block holds several per timestamp column (as a block of
    # many series does at the default size), the layout whose overlaps issue 14 misread.
    block_write.CHUNK_SAMPLES = 256
    data, acks, start, mode, arm_after, seed = sys.argv[1:7]
    b, arm_at = int(start), int(start) + int(arm_after)
    armed = [False]
    arm(mode, armed)
    rng = np.random.default_rng(int(seed))
    db = open_db(data, OPTIONS)
    ack_fd = os.open(acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    with db.appender() as app:
        refs = app.refs(series_labels())
    print("ready", flush=True)
    while True:
        armed[0] = b >= arm_at
        with db.appender() as app:
            app.append_batch(refs, b * STEP, values_for(b))
            if b % 5 == 0:
                app.append_batch(app.refs([fresh_labels(b)]), b * STEP, np.array([float(b)]))
        os.write(ack_fd, f"{b}\n".encode())
        if b % int(rng.integers(3, 12)) == 0:
            db.compact()
        b += 1


if __name__ == "__main__":
    main()
