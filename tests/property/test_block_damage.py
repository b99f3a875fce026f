"""Damaged block files: opening and reading raise CorruptionError, never anything else."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signalfire.errors import CorruptionError
from signalfire.labels import Labels
from signalfire.storage import series_set_from_lists
from signalfire.tsdb.block import Block, write_block

H = 3_600_000
FILES = ["index", "chunks/000001", "tombstones", "meta.json"]


@pytest.fixture(scope="module")
def pristine() -> Path:
    rng = np.random.default_rng(3)
    labels = [Labels.from_dict({"__name__": f"m{i % 4}", "i": str(i)}) for i in range(40)]
    ts = [np.sort(rng.choice(4 * H, 50, replace=False)).astype(np.int64) for _ in labels]
    vals = [np.round(rng.normal(size=50), 2) if i % 2 else rng.normal(size=50) for i in range(40)]
    d = Path(tempfile.mkdtemp(prefix="sf-damage-"))
    meta = write_block(d, series_set_from_lists(labels, ts, vals), min_time=0, max_time=4 * H)
    yield d / meta.ulid
    shutil.rmtree(d)


def _read_everything(path: Path) -> None:
    with Block.open(path) as b:
        b.verify()
        q = b.querier(0, 4 * H)
        q.select([])
        q.label_names()


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(FILES), st.floats(0, 1, exclude_max=True), st.integers(1, 255), st.booleans())
def test_damage_is_reported(pristine: Path, name: str, where: float, xor: int, truncate: bool) -> None:
    with tempfile.TemporaryDirectory() as d:
        copy = Path(d) / pristine.name
        shutil.copytree(pristine, copy)
        path = copy / name
        data = bytearray(path.read_bytes())
        pos = int(where * len(data))
        if truncate:
            data = data[:pos]
        else:
            data[pos] ^= xor
        path.write_bytes(bytes(data))
        try:
            _read_everything(copy)
        except CorruptionError as err:
            assert err.path.endswith(name.split("/")[-1])
        else:
            # Only meta.json edits that keep it valid JSON with sane values may pass.
            assert name == "meta.json"


@pytest.mark.parametrize("name", ["index", "chunks/000001"])
@pytest.mark.parametrize("pos", [5, 6, 7])
def test_header_padding_is_checked(pristine: Path, name: str, pos: int) -> None:
    # No CRC covers a file's header; a flipped bit in its padding must still be caught.
    with tempfile.TemporaryDirectory() as d:
        copy = Path(d) / pristine.name
        shutil.copytree(pristine, copy)
        path = copy / name
        data = bytearray(path.read_bytes())
        data[pos] ^= 1
        path.write_bytes(bytes(data))
        with pytest.raises(CorruptionError) as err:
            _read_everything(copy)
        assert err.value.path.endswith(name.split("/")[-1]) and "padding" in str(err.value)
