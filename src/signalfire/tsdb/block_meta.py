"""Block metadata (``meta.json``, Prometheus's layout) and ULIDs.

A block directory is named by a ULID: 48 bits of millisecond time then 80 random bits,
in Crockford base32, so names sort by creation time. Layout of meta.json:
docs/format/meta.md.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from signalfire.errors import CorruptionError

META_FILE = "meta.json"
META_VERSION = 1
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(_CROCKFORD)}


#: The last ULID :func:`new_ulid` made by itself, so the next one is larger.
_last_ulid = 0
_ulid_lock = threading.Lock()


def new_ulid(ms: int | None = None, randomness: bytes | None = None) -> str:
    """A 26-character ULID for time ``ms`` (default now) with 80 random bits.

    Without arguments the ULIDs of one process strictly increase (as oklog/ulid's
    monotonic entropy): two blocks cut in the same millisecond still sort in creation
    order, which is the order reads and compactions give overlapping blocks (the copy
    of a sample in the block made first wins, see ``storage/merge.py``).
    """
    global _last_ulid
    auto = ms is None and randomness is None
    if ms is None:
        ms = int(time.time() * 1000)
    rnd = randomness if randomness is not None else os.urandom(10)
    if not 0 <= ms < 2**48 or len(rnd) != 10:
        raise ValueError("ULID time must fit 48 bits and randomness be 10 bytes")
    n = (ms << 80) | int.from_bytes(rnd, "big")
    if auto:
        with _ulid_lock:
            # Same millisecond (or a clock step back): one more than the last, carrying
            # into the time bits in the (2**-80) case that the random part overflows.
            n = _last_ulid = max(n, _last_ulid + 1)
    return "".join(_CROCKFORD[(n >> (5 * i)) & 31] for i in range(25, -1, -1))


def ulid_time(ulid: str) -> int:
    """The millisecond timestamp inside a ULID; ValueError when it is not one."""
    if len(ulid) != 26 or any(c not in _DECODE for c in ulid.upper()) or ulid[0] > "7":
        raise ValueError(f"not a ULID: {ulid!r}")
    n = 0
    for c in ulid.upper():
        n = (n << 5) | _DECODE[c]
    return n >> 80


def is_ulid(name: str) -> bool:
    try:
        ulid_time(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class BlockMeta:
    """What meta.json says about a block.

    ``min_time`` is the first millisecond covered, ``max_time`` the exclusive end (as
    Prometheus's meta.json). ``sources`` are the level-1 blocks whose data this block
    holds (itself for level 1); ``parents`` the blocks compacted into it.
    """

    ulid: str
    min_time: int
    max_time: int
    num_series: int = 0
    num_samples: int = 0
    num_chunks: int = 0
    level: int = 1
    sources: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()
    num_tombstones: int = 0

    def overlaps(self, other: BlockMeta) -> bool:
        return self.min_time < other.max_time and other.min_time < self.max_time

    def to_json(self) -> dict[str, object]:
        return {
            "ulid": self.ulid,
            "minTime": self.min_time,
            "maxTime": self.max_time,
            "stats": {
                "numSamples": self.num_samples,
                "numSeries": self.num_series,
                "numChunks": self.num_chunks,
                "numTombstones": self.num_tombstones,
            },
            "compaction": {
                "level": self.level,
                "sources": list(self.sources),
                "parents": [{"ulid": p} for p in self.parents],
            },
            "version": META_VERSION,
        }

    @classmethod
    def from_json(cls, d: dict[str, object], path: str = META_FILE) -> BlockMeta:
        try:
            stats = d.get("stats") or {}
            comp = d.get("compaction") or {}
            assert isinstance(stats, dict) and isinstance(comp, dict)
            if d.get("version") != META_VERSION:
                raise ValueError(f"unsupported meta version {d.get('version')!r}")
            return cls(
                ulid=str(d["ulid"]),
                min_time=int(d["minTime"]),  # type: ignore[call-overload]
                max_time=int(d["maxTime"]),  # type: ignore[call-overload]
                num_series=int(stats.get("numSeries", 0)),
                num_samples=int(stats.get("numSamples", 0)),
                num_chunks=int(stats.get("numChunks", 0)),
                num_tombstones=int(stats.get("numTombstones", 0)),
                level=int(comp.get("level", 1)),
                sources=tuple(str(s) for s in comp.get("sources", [])),
                parents=tuple(str(p["ulid"]) for p in comp.get("parents", [])),
            )
        except (KeyError, ValueError, TypeError, AssertionError) as err:
            raise CorruptionError(path, 0, f"invalid meta.json: {err!r}") from err


def write_meta(dir_: Path, meta: BlockMeta) -> None:
    """Atomically (tmp + fsync + rename) write ``dir_/meta.json``."""
    tmp = dir_ / (META_FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(meta.to_json(), f, indent="\t")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dir_ / META_FILE)


def read_meta(dir_: Path) -> BlockMeta:
    path = dir_ / META_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise CorruptionError(str(path), 0, "meta.json missing") from err
    except (OSError, UnicodeDecodeError) as err:
        raise CorruptionError(str(path), 0, f"cannot read meta.json: {err}") from err
    try:
        d = json.loads(text)
    except json.JSONDecodeError as err:
        raise CorruptionError(str(path), err.pos, f"invalid meta.json: {err.msg}") from err
    if not isinstance(d, dict):
        raise CorruptionError(str(path), 0, "meta.json is not an object")
    return BlockMeta.from_json(d, str(path))
