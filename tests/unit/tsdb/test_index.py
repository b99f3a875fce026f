"""Postings and the index file (tsdb/index/postings.py, index_file.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from signalfire.errors import CorruptionError
from signalfire.labels import Labels, Matcher, MatchType
from signalfire.tsdb.index.index_file import IndexReader, write_index
from signalfire.tsdb.index.postings import MemPostings, select_postings, union_sorted

LABELS = sorted(
    [
        Labels.from_dict({"__name__": "up", "job": "api", "instance": "a"}),
        Labels.from_dict({"__name__": "up", "job": "web", "instance": "b"}),
        Labels.from_dict({"__name__": "http_total", "job": "api", "code": "200"}),
        Labels.from_dict({"__name__": "http_total", "job": "api", "code": "500"}),
        Labels.from_dict({"__name__": "http_total", "job": "web"}),
        Labels.from_dict({"__name__": "go_info", "version": "1.22"}),
    ]
)


def _empty_tables(n: int) -> dict[str, np.ndarray]:
    z = np.empty(0, np.int64)
    return {
        "piece_off": np.zeros(n + 1, np.int64),
        **{k: z for k in ("piece_mint", "piece_maxt", "piece_chunk", "piece_pos", "piece_tscol")},
        **{k: z for k in ("tscol_chunk", "tscol_pos", "chunk_ref")},
    }


@pytest.fixture(params=["memory", "file"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    if request.param == "memory":
        return MemPostings(LABELS)
    write_index(tmp_path / "index", LABELS, _empty_tables(len(LABELS)))
    return IndexReader(tmp_path / "index")


def _names(ids: np.ndarray) -> list[str]:
    return [str(LABELS[i]) for i in ids]


def m(op: str, name: str, value: str) -> Matcher:
    return Matcher(MatchType(op), name, value)


@pytest.mark.parametrize(
    ("matchers", "want"),
    [
        ([], 6),
        ([m("=", "__name__", "up")], 2),
        ([m("=", "job", "api")], 3),
        ([m("=", "code", "")], 4),  # series without the label
        ([m("!=", "code", "200")], 5),  # also series without the label
        ([m("=~", "code", "2..|")], 5),
        ([m("!~", "code", ".+")], 4),
        ([m("=~", "code", ".+")], 2),
        ([m("!=", "job", "api"), m("!=", "job", "web")], 1),  # only negative matchers
        ([m("=~", "__name__", "http_.*"), m("!~", "code", "5..")], 2),
        ([m("=", "nope", "x")], 0),
        ([m("=", "nope", "")], 6),
        ([m("!=", "nope", "")], 0),
        ([m("=~", "job", "api|web"), m("=", "__name__", "up"), m("=", "instance", "b")], 1),
    ],
)
def test_select_postings(index: object, matchers: list[Matcher], want: int) -> None:
    got = select_postings(index, matchers)  # type: ignore[arg-type]
    ref = [i for i, ls in enumerate(LABELS) if all(x.matches(ls.get(x.name)) for x in matchers)]
    assert got.tolist() == ref
    assert len(got) == want


def test_index_reader_labels_and_values(tmp_path: Path) -> None:
    write_index(tmp_path / "index", LABELS, _empty_tables(len(LABELS)))
    ix = IndexReader(tmp_path / "index")
    assert ix.num_series == 6
    assert ix.series_labels(np.arange(6)) == LABELS
    assert ix.label_names() == ["__name__", "code", "instance", "job", "version"]
    assert ix.label_value_list("job") == ["api", "web"]
    ids, vidx = ix.value_postings("job")
    assert sorted(zip(ids.tolist(), vidx.tolist())) == sorted(
        (i, ["api", "web"].index(ls.get("job"))) for i, ls in enumerate(LABELS) if ls.has("job")
    )


def test_unicode_and_odd_label_values(tmp_path: Path) -> None:
    labels = sorted([Labels.from_dict({"a": "é\n\x00", "b": "\udcff"}), Labels.from_dict({"a": "z"})])
    write_index(tmp_path / "index", labels, _empty_tables(2))
    assert IndexReader(tmp_path / "index").series_labels(np.arange(2)) == labels


def test_corrupt_index_names_offset(tmp_path: Path) -> None:
    write_index(tmp_path / "index", LABELS, _empty_tables(len(LABELS)))
    data = bytearray((tmp_path / "index").read_bytes())
    data[60] ^= 0x10
    (tmp_path / "index").write_bytes(bytes(data))
    with pytest.raises(CorruptionError) as err:
        IndexReader(tmp_path / "index")
    assert err.value.path.endswith("index") and err.value.offset <= 60


def test_union_sorted() -> None:
    a, b = np.array([1, 5, 9]), np.array([2, 5])
    assert union_sorted([a, b, np.empty(0, np.int64)]).tolist() == [1, 2, 5, 9]
    assert union_sorted([]).tolist() == []
