"""The op sizes one workload asks of a profile: what ``adaqp profile --for`` measures.

A prediction evaluates each op (SpMM, GEMM, element-wise, quantize / dequantize, copy, Adam) at
sizes set by the plan (rows, edges per rank) and the model (layer widths). Rather than
re-deriving those sizes, :func:`workload_shapes` runs the code that asks for them —
:func:`~adaqp.costmodel.program.build_program` for every schedule the workload may run — under
:func:`~adaqp.costmodel.profile.record_ops` and keeps each distinct per-rank size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from adaqp.costmodel.profile import SIZE_KEYS, HardwareProfile, load_profile, record_ops
from adaqp.errors import require

# sizes within this relative distance of an already-kept size (on every key) are the same shape
SAME_SIZE_REL = 0.02


def workload_shapes(stats, shape, bits: Iterable[int] = (2, 4, 8),
                    profile: HardwareProfile | None = None) -> dict[str, list[dict]]:
    """``{op: [sizes, ...]}``: every distinct size at which an epoch of ``shape`` (a
    ``ModelShape``) on the plan ``stats`` (``PlanStats``) evaluates an op, under the schedules
    vanilla, overlap and quant with each uniform width of ``bits``.

    Each size is a dict of ints with the keys the cost model is called with (SpMM: rows, nnz,
    width; GEMM: rows, in_dim, out_dim; element-wise, copy and quantize / dequantize: rows,
    width, elements; Adam: elements), one per rank (per-rank arrays are expanded). Sizes with a
    zero (an op a rank does not run) are dropped, and sizes within :data:`SAME_SIZE_REL` of one
    kept (every key) count once. Ops are in first-asked order, sizes sorted. ``profile`` only
    answers the calls (any complete profile gives the same sizes; default: the bundled
    ``cpu-2core``)."""
    from adaqp.costmodel.program import build_program
    from adaqp.wire import check_bits

    bits = tuple(check_bits(int(b)) for b in bits)
    require(len(bits) > 0, "workload_shapes needs at least one bit-width")
    profile = profile if profile is not None else load_profile("cpu-2core")
    with record_ops() as calls:
        build_program(stats, shape, "vanilla", profile)
        build_program(stats, shape, "overlap", profile)
        for b in bits:
            build_program(stats, shape, "quant", profile, bits=b)
    return unique_sizes(calls)


def unique_sizes(calls: Iterable[tuple[str, Mapping[str, Any]]],
                 rel: float = SAME_SIZE_REL) -> dict[str, list[dict]]:
    """``record_ops`` calls -> ``{op: [sizes]}``: per-rank arrays expanded, sizes with a zero
    dropped, near-duplicates (every key within ``rel``) kept once, each op's sizes sorted."""
    out: dict[str, list[dict]] = {}
    for op, sizes in calls:
        rows = _per_rank(sizes)
        if not rows:
            continue
        kept = out.setdefault(op, [])
        for s in rows:
            if min(s.values()) <= 0 or any(_same(s, t, rel) for t in kept):
                continue
            kept.append(s)
    return {op: sorted(v, key=lambda s: tuple(s[k] for k in SIZE_KEYS if k in s)) for op, v in out.items() if v}


def _per_rank(sizes: Mapping[str, Any], ranks: int | None = None) -> list[dict[str, int]]:
    """One dict of int sizes per rank from a call's sizes (scalars or per-rank arrays; ``ranks``:
    scalars are broadcast to that many); only the keys of :data:`SIZE_KEYS`, none: []."""
    keys = [k for k in SIZE_KEYS if k in sizes]
    if not keys:
        return []
    cols = [np.asarray(sizes[k], np.float64) for k in keys]
    if ranks is not None:
        cols = [np.broadcast_to(c, (ranks,)) for c in cols]
    cols = np.broadcast_arrays(*cols)
    return [{k: int(round(float(v))) for k, v in zip(keys, row)} for row in zip(*(c.reshape(-1) for c in cols))]


def _same(a: Mapping[str, int], b: Mapping[str, int], rel: float) -> bool:
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) <= rel * max(a[k], b[k]) for k in a)


def count(shapes: Mapping[str, Sequence[dict]]) -> int:
    """How many sizes ``shapes`` holds over all ops."""
    return sum(len(v) for v in shapes.values())


def corun_step(stats, width: int) -> dict[str, int]:
    """The co-run benchmark's step at a workload's size (``runtime.profiling.ranks.corun_worker``,
    a square SpMM then a dense layer): a typical rank's rows (the median over ranks of its own
    nodes) and non-zeros (the median of its local edges, central and marginal), at ``width``
    (the hidden width: most of an epoch's layers run at it)."""
    rows = int(np.median(np.asarray(stats.inner)))
    nnz = int(np.median(np.asarray(stats.nnz_central) + np.asarray(stats.nnz_marginal)))
    require(rows > 0 and nnz > 0 and width > 0, f"corun_step: a rank needs rows, edges and a width, got "
                                                f"{rows} rows, {nnz} non-zeros, width {width}")
    return {"rows": rows, "nnz": nnz, "width": int(width)}


def epoch_sequences(stats, shape, schedule: str = "quant", bits: int = 4,
                    profile: HardwareProfile | None = None) -> list[list[tuple[str, dict]]]:
    """Per rank, the ``(op, sizes)`` calls of one epoch's compute in the order
    :func:`~adaqp.costmodel.program.build_program` costs them (the runtime's order): what
    ``runtime.profiling.epoch_loop`` runs back to back. Per-rank arrays are split by rank; a
    call with a zero size (an op the rank does not run) is left out of that rank's list."""
    from adaqp.costmodel.program import build_program

    profile = profile if profile is not None else load_profile("cpu-2core")
    with record_ops() as calls:
        build_program(stats, shape, schedule, profile, bits=bits)
    out: list[list[tuple[str, dict]]] = [[] for _ in range(stats.num_parts)]
    for op, sizes in calls:
        for r, s in enumerate(_per_rank(sizes, stats.num_parts)):
            if min(s.values()) > 0:
                out[r].append((op, s))
    return out
