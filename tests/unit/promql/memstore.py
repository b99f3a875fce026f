"""A tiny in-memory Queryable for engine tests (no tsdb involved)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from signalfire._types import STALE_NAN
from signalfire.labels import Labels, Matcher, matches_all
from signalfire.storage import SeriesSet
from signalfire.storage.interface import SelectHints
from signalfire.storage.runs import RunSet
from signalfire.storage.series_set import empty_series_set, series_set_from_lists
from signalfire.util.deadline import Deadline


class MemStore:
    """Series kept as ``Labels -> (ts int64[n], values float64[n])``; both ends of a
    querier's range are inclusive, as in the real storage."""

    def __init__(self) -> None:
        self.data: dict[Labels, tuple[np.ndarray, np.ndarray]] = {}
        self.selects: list[tuple[list[Matcher], SelectHints | None]] = []

    def add(self, labels: Labels | dict[str, str], ts: Iterable[int], values: Iterable[float]) -> MemStore:
        ls = labels if isinstance(labels, Labels) else Labels.from_dict(labels)
        t = np.asarray(list(ts), np.int64)
        v = np.asarray(list(values), np.float64)
        if ls in self.data:
            t0, v0 = self.data[ls]
            t = np.concatenate([t0, t])
            v = np.concatenate([v0, v])
        order = np.argsort(t, kind="stable")
        self.data[ls] = (t[order], v[order])
        return self

    def load(self, text: str, interval_ms: int) -> MemStore:
        """``name{a="b"} 1 2 _ stale 4`` lines: value i at i * interval (no expansions)."""
        for line in text.strip().splitlines():
            line = line.strip()
            cut = line.index("}") + 1 if "{" in line else len(line.split()[0])
            ident, items = line[:cut], line[cut:].split()
            name, _, rest = ident.partition("{")
            pairs = {"__name__": name} if name else {}
            for kv in filter(None, rest.rstrip("}").split(",")):
                k, _, v = kv.partition("=")
                pairs[k.strip()] = v.strip().strip('"')
            ts, vs = [], []
            for i, it in enumerate(items):
                if it == "_":
                    continue
                ts.append(i * interval_ms)
                vs.append(STALE_NAN if it == "stale" else float(it))
            self.add(Labels.from_dict(pairs), ts, vs)
        return self

    def querier(self, mint: int, maxt: int) -> MemQuerier:
        return MemQuerier(self, mint, maxt)


class MemQuerier:
    def __init__(self, store: MemStore, mint: int, maxt: int) -> None:
        self.store, self.mint, self.maxt = store, mint, maxt

    def select(
        self, matchers: Sequence[Matcher], hints: SelectHints | None = None, deadline: Deadline | None = None
    ) -> SeriesSet:
        if deadline is not None:
            deadline.check()
        self.store.selects.append((list(matchers), hints))
        labels, tss, vss = [], [], []
        for ls, (t, v) in self.store.data.items():
            if not matches_all(matchers, ls):
                continue
            keep = (t >= self.mint) & (t <= self.maxt)
            if keep.any():
                labels.append(ls)
                tss.append(t[keep])
                vss.append(v[keep])
        if not labels:
            return empty_series_set()
        return series_set_from_lists(labels, tss, vss)

    def select_runs(
        self, matchers: Sequence[Matcher], hints: SelectHints | None = None, deadline: Deadline | None = None
    ) -> RunSet:
        return RunSet.of(self.select(matchers, hints, deadline))

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        return sorted({n for ls in self.store.data for n, _ in ls})

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        return sorted({ls.get(name) for ls in self.store.data if ls.get(name)})

    def close(self) -> None:
        pass
