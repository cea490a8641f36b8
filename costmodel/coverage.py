"""Shape coverage: does a prediction ask a profile's op models for sizes they were measured at?

Every measured op model keeps the points it was fitted to, so it knows the range of each size it
saw (rows, nnz, width, ...). A prediction that evaluates an op well outside that range rests on
extrapolation (a straight line, a log-log slope or the nearest point, scaled far beyond where it
was checked), so the commands that predict say so: one warning line per op on stderr and an
``extrapolated`` list in ``summary.json``. See docs/coverage.md.

Usage, around the code that predicts::

    with coverage.watch(profile) as extrapolated:
        e = estimate(...)
    summary["extrapolated"] = extrapolated   # filled when the block ends

or, from calls collected with :func:`adaqp.costmodel.profile.record_ops`,
``warn_extrapolated(profile, calls)``.
"""

from __future__ import annotations

import math
import sys
from contextlib import contextmanager, suppress
from typing import Any, Callable, Iterable, Iterator, Mapping, TextIO

import numpy as np

from adaqp.costmodel.profile import FEATURES, SIZE_KEYS, HardwareProfile, OpModel, record_ops

# A query within [lo / TOLERANCE, hi * TOLERANCE] of the measured range counts as covered.
TOLERANCE = 1.05


def measured_range(m: OpModel) -> dict[str, tuple[float, float]]:
    """``{size key: (min, max)}`` over the model's measured points, for every size key
    (:data:`~adaqp.costmodel.profile.SIZE_KEYS`) the points carry (positive values only). A
    log-log model also gives its feature's range from ``xs`` when its points do not already
    (e.g. ``elements``; a composite feature such as ``nnz_x_width`` keeps its own name). A model
    without points (a spec-derived profile) has no measured range: an empty dict."""
    out: dict[str, tuple[float, float]] = {}
    for key in SIZE_KEYS:
        vals = [float(p[key]) for p in m.points if _positive(p.get(key))]
        if vals:
            out[key] = (min(vals), max(vals))
    if m.kind == "loglog" and m.xs and m.features[0] not in out:
        out[m.features[0]] = (float(m.xs[0]), float(m.xs[-1]))
    return out


def extrapolations(profile: HardwareProfile, calls: Iterable[tuple[str, Mapping[str, Any]]],
                   tolerance: float = TOLERANCE) -> list[dict]:
    """The sizes asked outside an op's measured range, from ``(op, sizes)`` calls as
    :func:`~adaqp.costmodel.profile.record_ops` collects them (sizes scalars or per-rank arrays).

    One record per op and size key: ``{"op", "size", "asked", "measured": [lo, hi]}``, where
    ``asked`` is the value asked farthest outside the range (by ratio). An element of a query with
    a zero size is an op not run and does not count. Records follow the profile's op order and
    :data:`~adaqp.costmodel.profile.SIZE_KEYS` order; an empty list when every query is covered."""
    ranges = {name: measured_range(m) for name, m in profile.ops.items()}
    seen: dict[tuple[str, str], list[float]] = {}  # (op, key) -> [min asked, max asked]
    for op, sizes in calls:
        op = profile.costed_as(op)
        rng = ranges.get(op)
        if not rng:
            continue
        values = _active_values(sizes, rng)
        for key, v in values.items():
            cur = seen.setdefault((op, key), [math.inf, -math.inf])
            cur[0], cur[1] = min(cur[0], float(v.min())), max(cur[1], float(v.max()))
    records = []
    for op in profile.ops:
        for key in ranges[op]:
            if (op, key) not in seen:
                continue
            lo, hi = ranges[op][key]
            qmin, qmax = seen[(op, key)]
            below = lo / qmin if qmin < lo / tolerance else 0.0
            above = qmax / hi if qmax > hi * tolerance else 0.0
            if below or above:
                asked = qmin if below > above else qmax
                records.append({"op": op, "size": key, "asked": _json_num(asked),
                                "measured": [_json_num(lo), _json_num(hi)]})
    return records


def warning_lines(profile: HardwareProfile, records: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per op (its records joined), e.g. ``adaqp: warning: spmm_fwd extrapolated:
    width 1433 outside measured 16..256 (profile cpu-2core)``."""
    by_op: dict[str, list[str]] = {}
    for r in records:
        lo, hi = r["measured"]
        by_op.setdefault(r["op"], []).append(
            f"{r['size']} {_fmt(r['asked'])} outside measured {_fmt(lo)}..{_fmt(hi)}")
    return [f"adaqp: warning: {op} extrapolated: {', '.join(parts)} (profile {profile.name})"
            for op, parts in by_op.items()]


def warn_extrapolated(profile: HardwareProfile, calls: Iterable[tuple[str, Mapping[str, Any]]],
                      log: TextIO | Callable[[str], Any] | None = None) -> list[dict]:
    """:func:`extrapolations` of ``calls``, each op's warning line written to ``log`` (a stream,
    default stderr, or a function taking the line); returns the records for ``summary.json``."""
    records = extrapolations(profile, calls)
    for line in warning_lines(profile, records):
        if callable(log):
            log(line)
        else:
            print(line, file=log if log is not None else sys.stderr, flush=True)
    return records


@contextmanager
def watch(profile: HardwareProfile, log: TextIO | Callable[[str], Any] | None = None) -> Iterator[list[dict]]:
    """Record every op evaluation made inside the block; when it ends, warn about those outside
    ``profile``'s measured ranges (:func:`warn_extrapolated`) and fill the yielded list with the
    records. Nothing is checked when the block raises."""
    found: list[dict] = []
    with record_ops() as calls:
        yield found
    found.extend(warn_extrapolated(profile, calls, log))


def _active_values(sizes: Mapping[str, Any], rng: Mapping[str, tuple[float, float]]) -> dict[str, np.ndarray]:
    """Per range key, the query's values where the op runs (no size zero); composite keys (a
    log-log feature such as ``nnz_x_width``) are computed from the sizes."""
    given = {k: v for k, v in sizes.items() if k in SIZE_KEYS}
    if not given:
        return {}
    try:
        arrays = dict(zip(given, np.broadcast_arrays(*(np.asarray(v, np.float64) for v in given.values()))))
    except ValueError:  # sizes that do not broadcast: nothing to say about coverage
        return {}
    flat = {k: v.reshape(-1) for k, v in arrays.items()}
    run = np.ones(next(iter(flat.values())).size, bool)
    for v in flat.values():
        run &= np.isfinite(v) & (v > 0)
    if not run.any():
        return {}
    out = {}
    for key in rng:
        if key in flat:
            out[key] = flat[key][run]
        elif key in FEATURES and key not in SIZE_KEYS:
            with suppress(KeyError, IndexError):  # the query lacks a size the feature needs
                out[key] = np.asarray(FEATURES[key](flat), np.float64)[run]
    return out


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _json_num(v: float) -> int | float:
    return int(v) if float(v).is_integer() and abs(v) < 2 ** 53 else float(v)


def _fmt(v) -> str:
    return str(v) if isinstance(v, int) else f"{v:.4g}"
