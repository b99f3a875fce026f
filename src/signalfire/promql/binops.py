"""Binary operators: arithmetic, comparisons, ``atan2`` and the set operators.

Vector matching is done once over the series, never over cells: every row gets a
*signature* (the label values it is matched on), signatures become dense group ids,
and the pairs ``(left row, right row)`` with equal ids are built with numpy. The
per-step parts (which pair is present at which step, Prometheus's duplicate checks)
are boolean [pairs, T] arrays.
"""

from __future__ import annotations

import sys

import numpy as np

from signalfire._types import F64, I64, Bool
from signalfire.errors import QueryError
from signalfire.labels import METRIC_NAME, TYPE_LABEL, UNIT_LABEL, Labels, is_legacy_label_name, quote
from signalfire.promql import ast
from signalfire.promql.names import merge_same_labels, strip_name
from signalfire.promql.values import ScalarSeries, StepMatrix
from signalfire.util import ragged

_NAME_LABELS = frozenset({METRIC_NAME, TYPE_LABEL, UNIT_LABEL})
ARITHMETIC = frozenset({"+", "-", "*", "/", "%", "^", "atan2"})
COMPARISON = frozenset({"==", "!=", ">", "<", ">=", "<="})
SET_OPS = frozenset({"and", "or", "unless"})


#: The elementwise kernel of every arithmetic and comparison operator.
_UFUNCS: dict[str, np.ufunc] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.true_divide,
    "%": np.fmod,  # Go's math.Mod: the sign follows the dividend
    "^": np.power,
    "atan2": np.arctan2,
    "==": np.equal,
    "!=": np.not_equal,
    ">": np.greater,
    "<": np.less,
    ">=": np.greater_equal,
    "<=": np.less_equal,
}


def apply_op(op: str, a: F64, b: F64) -> tuple[F64, Bool | None]:
    """``a op b`` elementwise; for comparisons also the keep mask (values are ``a``)."""
    if op in COMPARISON:
        keep: Bool = _UFUNCS[op](a, b)
        return a, keep
    out: F64 = _UFUNCS[op](a, b)
    return out, None


def scalar_scalar(op: str, lhs: ScalarSeries, rhs: ScalarSeries) -> ScalarSeries:
    """Two scalars: comparisons give 0/1 (the parser demands ``bool``)."""
    vals, keep = apply_op(op, lhs.values, rhs.values)
    if keep is not None:
        return ScalarSeries(keep.astype(np.float64))
    return ScalarSeries(np.asarray(vals, np.float64))


def vector_scalar(
    op: str, vec: StepMatrix, scalar: ScalarSeries, scalar_left: bool, return_bool: bool
) -> StepMatrix:
    """A vector against a scalar; comparisons filter (or give 0/1 with ``bool``).

    A comparison keeps the vector's value even when the scalar is on the left; the name
    is dropped by arithmetic and by ``bool``.
    """
    s = scalar.values[None, :]
    a, b = (s, vec.values) if scalar_left else (vec.values, s)
    vals, keep = apply_op(op, a, b)
    present = vec.present
    if keep is not None:
        if return_bool:
            vals = keep.astype(np.float64)
        else:
            vals = vec.values
            present = present & keep
    drop = vec.name_dropped().copy()
    if op in ARITHMETIC or return_bool:
        drop[:] = True
    out = StepMatrix(vec.labels, np.ascontiguousarray(np.broadcast_to(vals, vec.values.shape)), present, drop)
    return _drop_empty(out)


def unary_minus(vec: StepMatrix) -> StepMatrix:
    return StepMatrix(vec.labels, -vec.values, vec.present, np.ones(len(vec.labels), np.bool_))


def _drop_empty(sm: StepMatrix) -> StepMatrix:
    rows = sm.present.any(axis=1)
    if rows.all():
        return sm
    return _take(sm, np.flatnonzero(rows))


def _take(sm: StepMatrix, idx: I64) -> StepMatrix:
    dn = None if sm.drop_name is None else sm.drop_name[idx]
    return StepMatrix([sm.labels[i] for i in idx.tolist()], sm.values[idx], sm.present[idx], dn)


# ---------------------------------------------------------------- signatures


def signature(ls: Labels, on: bool, names: frozenset[str]) -> tuple[tuple[str, str], ...]:
    """The labels a row is matched on: ``on(names)`` keeps them; otherwise all labels
    except ``__name__`` and ``ignoring(names)``."""
    if on:
        return tuple(p for p in ls if p[0] in names)
    return tuple(p for p in ls if p[0] not in names and p[0] != METRIC_NAME)


def _sig_ids(
    lhs: StepMatrix, rhs: StepMatrix, m: ast.VectorMatching
) -> tuple[I64, I64, list[tuple[tuple[str, str], ...]]]:
    names = frozenset(m.labels)
    keys = [signature(ls, m.on, names) for ls in lhs.labels]
    keys += [signature(ls, m.on, names) for ls in rhs.labels]
    ids, uniq = ragged.group_ids(keys)
    return ids[: len(lhs.labels)], ids[len(lhs.labels) :], uniq


def _group_any(ids: I64, G: int, present: Bool) -> Bool:
    return ragged.group_count(ids, G, present) > 0


# ---------------------------------------------------------------- set operators


def set_operation(op: str, lhs: StepMatrix, rhs: StepMatrix, m: ast.VectorMatching) -> StepMatrix:
    """``and`` / ``or`` / ``unless``, step by step, matching on signatures."""
    gl, gr, uniq = _sig_ids(lhs, rhs, m)
    G = len(uniq)
    if op == "and":
        rany = _group_any(gr, G, rhs.present)
        return _drop_empty(StepMatrix(lhs.labels, lhs.values, lhs.present & rany[gl], lhs.drop_name))
    if op == "unless":
        rany = _group_any(gr, G, rhs.present)
        return _drop_empty(StepMatrix(lhs.labels, lhs.values, lhs.present & ~rany[gl], lhs.drop_name))
    lany = _group_any(gl, G, lhs.present)
    rpresent = rhs.present & ~lany[gr]
    labels = list(lhs.labels) + list(rhs.labels)
    values = np.concatenate([lhs.values, rhs.values])
    present = np.concatenate([lhs.present, rpresent])
    drop = np.concatenate([lhs.name_dropped(), rhs.name_dropped()])
    return merge_same_labels(_drop_empty(StepMatrix(labels, values, present, drop)))


# ---------------------------------------------------------------- vector matching


def vector_vector(
    op: str, lhs: StepMatrix, rhs: StepMatrix, m: ast.VectorMatching, return_bool: bool, delayed: bool
) -> StepMatrix:
    """Arithmetic or comparison between two vectors with one-to-one or group_x matching."""
    T = lhs.values.shape[1]
    swapped = m.card is ast.Cardinality.ONE_TO_MANY
    if swapped:
        lhs, rhs = rhs, lhs  # the right side is always the "one" side below
    gl, gr, uniq = _sig_ids(lhs, rhs, m)
    G = len(uniq)
    r_count = ragged.group_count(gr, G, rhs.present)
    l_any = _group_any(gl, G, lhs.present)
    r_any = r_count > 0
    fill_l = m.fill_left
    fill_r = m.fill_right
    _check_one_side(lhs, rhs, gr, r_count, uniq, m, swapped, fill_l is not None)

    # Matched pairs: every left row with every right row of its group.
    order = np.argsort(gr, kind="stable")
    starts = np.searchsorted(gr[order], np.arange(G + 1))
    n_per_left = starts[gl + 1] - starts[gl]
    pl = ragged.segment_ids(n_per_left)
    pr = order[ragged.ragged_arange(starts[gl], n_per_left)]

    lv_parts = [lhs.values[pl]]
    rv_parts = [rhs.values[pr]]
    pres_parts = [lhs.present[pl] & rhs.present[pr]]
    label_parts: list[Labels] = []
    names = frozenset(m.labels)
    arith = op in ARITHMETIC
    for i, k in zip(pl.tolist(), pr.tolist()):
        label_parts.append(_result_labels(lhs.labels[i], rhs.labels[k], m, arith, names))
    sig_parts = [gl[pl]]
    # A comparison keeps the left labels, so a pending (delayed) name drop of the left
    # side must travel with them.
    drop_parts = [lhs.name_dropped()[pl]]
    if fill_r is not None:  # left rows whose group has no right sample at a step
        lv_parts.append(lhs.values)
        rv_parts.append(np.full((len(gl), T), fill_r))
        pres_parts.append(lhs.present & ~r_any[gl])
        label_parts += [_result_labels(ls, Labels(()), m, arith, names) for ls in lhs.labels]
        sig_parts.append(gl)
        drop_parts.append(lhs.name_dropped())
    if fill_l is not None:  # right rows whose group has no left sample at a step
        lv_parts.append(np.full((len(gr), T), fill_l))
        rv_parts.append(rhs.values)
        pres_parts.append(rhs.present & ~l_any[gr])
        label_parts += [_filled_left_labels(ls, m, names) for ls in rhs.labels]
        sig_parts.append(gr)
        drop_parts.append(np.zeros(len(gr), np.bool_))
    lv = np.concatenate(lv_parts) if lv_parts else np.empty((0, T))
    rv = np.concatenate(rv_parts)
    present = np.concatenate(pres_parts)
    sigs = np.concatenate(sig_parts)
    a, b = (rv, lv) if swapped else (lv, rv)
    vals, keep = apply_op(op, a, b)
    if m.card is ast.Cardinality.ONE_TO_ONE:
        _check_one_to_one(sigs, present, G)  # before comparison filtering, as Prometheus does
    if keep is not None:
        if return_bool:
            vals = keep.astype(np.float64)
        else:
            present = present & keep
    drop = np.concatenate(drop_parts) | return_bool
    if return_bool and not delayed:
        label_parts = [strip_name(ls) for ls in label_parts]
    _check_matches(label_parts, sigs, present, G, m)
    out = StepMatrix(label_parts, np.ascontiguousarray(vals, np.float64), present, drop)
    return merge_same_labels(_drop_empty(out))


def _result_labels(
    ls: Labels, rs: Labels, m: ast.VectorMatching, arith: bool, names: frozenset[str]
) -> Labels:
    """Prometheus's ``resultMetric``: the left labels, minus the name for arithmetic, cut
    to the matching labels for one-to-one, plus ``group_x(...)`` labels from the one side.

    Filtering a sorted label tuple keeps it sorted, so only ``group_x`` labels need a re-sort.
    """
    dropped = _NAME_LABELS if arith else frozenset()
    if m.card is ast.Cardinality.ONE_TO_ONE and m.on:
        base = tuple(p for p in ls if p[0] in names and p[0] not in dropped)
    elif m.card is ast.Cardinality.ONE_TO_ONE:
        gone = names | dropped
        base = tuple(p for p in ls if p[0] not in gone)
    else:
        base = tuple(p for p in ls if p[0] not in dropped)
    if not m.include:
        return Labels(base)
    # The include labels replace (or, when empty on the one side, remove) their names;
    # the rest of the sorted, interned base is kept as it is and only re-sorted.
    extra = [(n, v) for n in m.include if (v := rs.get(n))]
    include = frozenset(m.include)
    kept = [p for p in base if p[0] not in include]
    if not extra:
        return Labels(tuple(kept))
    return Labels(tuple(sorted(kept + [(sys.intern(n), v) for n, v in extra])))


def _filled_left_labels(rs: Labels, m: ast.VectorMatching, names: frozenset[str]) -> Labels:
    """Labels of a result whose left side was filled: the match group's labels."""
    pairs = dict(signature(rs, m.on, names))
    for n in m.include:
        v = rs.get(n)
        if v:
            pairs[n] = v
    return Labels.from_dict(pairs)


def _check_one_side(
    lhs: StepMatrix,
    rhs: StepMatrix,
    gr: I64,
    r_count: I64,
    uniq: list[tuple[tuple[str, str], ...]],
    m: ast.VectorMatching,
    swapped: bool,
    fill_left: bool,
) -> None:
    """Many-to-many is an error: the "one" side must be unique per group at each step
    where both sides have samples."""
    dup = r_count > 1
    if not dup.any():
        return
    steps_live: Bool = np.asarray(lhs.present.any(axis=0)) | fill_left
    rhs_live: Bool = np.asarray(rhs.present.any(axis=0))
    bad = dup & steps_live[None, :] & rhs_live[None, :]
    if not bad.any():
        return
    g, j = (int(x[0]) for x in np.nonzero(bad))
    rows = [k for k in np.flatnonzero(gr == g).tolist() if rhs.present[k, j]]
    first, second = sorted([rhs.labels[rows[0]], rhs.labels[rows[1]]])
    side = "left" if swapped else "right"
    names = frozenset(m.labels)
    if m.on:
        matched = Labels(tuple(p for p in second if p[0] in names))
    else:
        matched = Labels(tuple(p for p in second if p[0] not in names and p[0] != METRIC_NAME))
    raise QueryError(
        f"found duplicate series for the match group {go_labels(matched)} on the {side} hand-side "
        f"of the operation: [{go_labels(first)}, {go_labels(second)}];many-to-many matching not allowed: "
        "matching labels must be unique on one side"
    )


def _check_one_to_one(sigs: I64, present: Bool, G: int) -> None:
    if not len(sigs) or np.bincount(sigs, minlength=G).max() < 2:
        return  # one row per group (the usual case) cannot match twice at any step
    if (ragged.group_count(sigs, G, present) > 1).any():
        raise QueryError(
            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
        )


def go_labels(ls: Labels) -> str:
    """Labels as Go's ``labels.Labels.String()`` prints them: every pair inside braces."""
    parts = [f"{n if is_legacy_label_name(n) else quote(n)}={quote(v)}" for n, v in ls]
    return "{" + ", ".join(parts) + "}"


def _check_matches(labels: list[Labels], sigs: I64, present: Bool, G: int, m: ast.VectorMatching) -> None:
    """One-to-one: one result per group and step; group_x: unique result labels per group."""
    if not len(labels) or m.card is ast.Cardinality.ONE_TO_ONE:
        return
    ids, uniq = ragged.group_ids(list(zip(sigs.tolist(), labels)))
    if len(uniq) != len(labels) and (ragged.group_count(ids, len(uniq), present) > 1).any():
        raise QueryError("multiple matches for labels: grouping labels must ensure unique matches")
