"""Ops timed in an epoch's order: a workload's compute, op after op, on synthetic tensors.

``profile --for`` times each op size alone, after evicting the caches (the cold end of what an op
meets in training). Inside an epoch an op meets the caches its predecessors left, and the
machine in whatever state it is in while the workload trains. :func:`time_sequences` runs the
ops of one epoch of every rank (:func:`adaqp.costmodel.shapes.epoch_sequences`: the order the
cost model costs them, which is the runtime's) back to back, one rank after another, timing each
call; :func:`in_epoch_profile` puts the medians into a profile as measured points of those exact
sizes, so a prediction of that workload reads them.

This is a micro-benchmark, not a training run: random tensors of the sizes the cost model asks
for, each op through the code path its ``profile`` benchmark uses (``profiler.op_benchmarks``),
no autograd graph, no exchange. An op the cost model leaves out of an epoch is left out here too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone

import torch

from adaqp.costmodel.profile import HardwareProfile
from adaqp.errors import require

IN_EPOCH_REPS = 5  # passes timed, after one warm-up pass


def _key(op: str, sizes: dict) -> tuple:
    return (op, *sorted(sizes.items()))


def time_sequences(sequences: Sequence[Sequence[tuple[str, dict]]], device: str = "cpu",
                   reps: int = IN_EPOCH_REPS, warmup: int = 1) -> dict[tuple, list[float]]:
    """``{(op, *sizes): [seconds, ...]}``: every call of every sequence, timed on each of
    ``reps`` passes after ``warmup`` untimed ones. A pass runs the sequences one after another;
    each distinct (op, sizes) is set up once and its output held until the next pass, as an
    epoch holds its activations for the backward pass."""
    from adaqp.runtime.profiling.profiler import _setup_sizes, op_benchmarks, Grid

    require(reps >= 1 and warmup >= 0, f"reps must be >= 1 and warmup >= 0, got {reps}, {warmup}")
    setups = {op: setup for op, setup, _ in op_benchmarks(Grid("setups"))}
    fns: dict[tuple, object] = {}
    for seq in sequences:
        for op, sizes in seq:
            k = _key(op, sizes)
            if k not in fns:
                fns[k] = setups[op](device, **_setup_sizes(op, sizes))
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    held: dict[int, object] = {}
    times: dict[tuple, list[float]] = {}
    for p in range(warmup + reps):
        for seq in sequences:
            for i, (op, sizes) in enumerate(seq):
                k = _key(op, sizes)
                sync()
                t0 = time.perf_counter()
                out = fns[k]()
                sync()
                took = time.perf_counter() - t0
                held[id(seq), i] = out  # the previous pass's output is freed only now
                if p >= warmup:
                    times.setdefault(k, []).append(took)
    return times


def points_of(times: dict[tuple, list[float]]) -> dict[str, list[dict]]:
    """``{op: [point, ...]}``: per (op, sizes) the median / p10 / p90 of its timed calls, with the
    sizes a profile's points carry (``profiler.point_sizes``)."""
    from adaqp.runtime.profiling.profiler import point_sizes
    from adaqp.runtime.profiling.ranks import r4, stats

    out: dict[str, list[dict]] = {}
    for (op, *items), ts in times.items():
        med, p10, p90 = (r4(v) for v in stats(ts))
        out.setdefault(op, []).append({**point_sizes(dict(items)), "median_s": med, "p10_s": p10, "p90_s": p90})
    return out


def in_epoch_profile(base: HardwareProfile, sequences, device: str = "cpu", reps: int = IN_EPOCH_REPS,
                     note: str = "") -> HardwareProfile:
    """``base`` with every op size of ``sequences`` timed in epoch order (:func:`time_sequences`,
    the base's ``compute_threads``) and stored as a measured point of that exact size (a point of
    the same sizes is replaced; the op's fitted model is kept, so other sizes predict as before).
    ``meta["measured_in_epoch"]`` records when, what and how."""
    from adaqp.runtime.profiling.profiler import merge_points

    require(base.kind == "measured", f"profile {base.name!r} is {base.kind}: in-epoch points go into a measured profile")
    threads = int(base.meta.get("compute_threads") or torch.get_num_threads())
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    # an optional op the profile lacks is timed as the op that costs it there
    sequences = [[(base.costed_as(op), sizes) for op, sizes in seq] for seq in sequences]
    try:
        points = points_of(time_sequences(sequences, device, reps))
    finally:
        torch.set_num_threads(old)
    ops = dict(base.ops)
    for op, pts in points.items():
        ops[op] = replace(ops[op], points=tuple(merge_points(ops[op].points, pts)))
    meta = dict(base.meta)
    meta["measured_in_epoch"] = [*meta.get("measured_in_epoch", []), {
        "workload": note, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "threads": threads,
        "reps": reps, "ranks": len(sequences), "calls_per_pass": sum(map(len, sequences)),
        "sizes": {op: len(v) for op, v in points.items()}, "elapsed_s": round(time.perf_counter() - t0, 2)}]
    return replace(base, ops=ops, meta=meta)
