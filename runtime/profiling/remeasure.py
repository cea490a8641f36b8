"""Re-measure some ops of an existing profile at the sizes it already holds.

When the code behind an op changes (a new kernel, a new random-number generator), the op's
points in a measured profile describe code that no longer runs. ``remeasure`` times the named
ops again, at the same sizes, thread count and repetition settings the profile was measured
with, refits them with :func:`fit.fit_op` and records what was done in ``meta["remeasured"]``;
every other op, link and table stays as it was measured.

Besides ops, two names stand for the host's tables, which drift with the load on a shared
machine more than op timings do: ``sync`` (``sync_s``, ``allreduce_sync_s``, ``sync_by_gap``;
:func:`runtime.profiling.ranks.measure_sync`) and ``corun`` (``corun_by_ranks``;
:func:`runtime.profiling.ranks.measure_corun` at the full grid's sizes). Each runs again for the
rank counts the profile holds (a CPU profile only: a GPU's come from its shared-GPU benchmark).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import torch

from adaqp.costmodel.profile import OP_FEATURES, HardwareProfile
from adaqp.errors import require
from adaqp.runtime.profiling.profiler import Grid

_SIZE_KEYS = ("rows", "nnz", "width", "in_dim", "out_dim", "elements")
SYNC_REPS = Grid.sync_reps  # loop iterations of the sync benchmark, as a full profile runs it
# host tables --update can re-measure besides ops: name -> the fields it reports before / after
TABLES = {"sync": ("sync_s", "allreduce_sync_s"), "corun": ("corun_by_ranks",)}


def _sizes(op: str, points) -> list[dict]:
    """The setup keyword arguments of each stored point (``elements`` is derived for row ops)."""
    out = []
    for p in points:
        s = {k: int(p[k]) for k in _SIZE_KEYS if k in p}
        if op != "adam":
            s.pop("elements", None)
        out.append(s)
    return out


def remeasure(profile: HardwareProfile, ops: list[str], why: str, progress=print) -> HardwareProfile:
    """``profile`` with ``ops`` measured again on this machine (its device, threads, timing)."""
    from adaqp.runtime.profiling import profiler

    unknown = [o for o in ops if o not in OP_FEATURES and o not in TABLES]
    require(not unknown, f"unknown op(s) {', '.join(unknown)}; choose from {', '.join([*OP_FEATURES, *TABLES])}")
    require(profile.kind == "measured", f"profile {profile.name!r} is {profile.kind}: only a measured "
                                        "profile can be re-measured")
    for table in (t for t in TABLES if t in ops):
        profile = _remeasure_table(profile, table, why, progress)
    ops = [o for o in ops if o not in TABLES]
    if not ops:
        return profile
    # an optional op the profile lacks is measured at the sizes of the op that stands in for it
    stored = {o: profile.ops[profile.costed_as(o)] for o in ops}
    no_points = [o for o in ops if not stored[o].points]
    require(not no_points, f"profile {profile.name!r} keeps no measured sizes for {', '.join(no_points)}")
    timing = dict(profile.meta.get("timing", {}))
    grid = replace(profiler.quick_grid(), warmup=int(timing.get("warmup", 2)), reps=int(timing.get("reps", 7)),
                   budget_s=float(timing.get("budget_s_per_point", 1.0)))
    setups = {name: setup for name, setup, _ in profiler.op_benchmarks(profiler.full_grid())}
    threads = int(profile.meta.get("compute_threads", torch.get_num_threads()))
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    new_ops, changes = dict(profile.ops), []
    try:
        for op in ops:
            before = stored[op]
            model, err = profiler.measure_op(op, setups[op], _sizes(op, before.points), profile.device, grid)
            new_ops[op] = model
            ratio = _median_ratio(before.points, model.points)
            err_med, err_max = (float(v) for v in err)  # fit errors over the points: median, max %
            changes.append({"op": op, "kind": model.kind, "fit_errors_pct": [round(err_med, 1), round(err_max, 1)],
                            "median_time_ratio_new_over_old": round(ratio, 3)})
            if progress:
                progress(f"  {op:<14} {model.kind:<8} new/old median time {ratio:5.2f}x  "
                         f"fit error median {err_med:4.1f} % max {err_max:5.1f} %")
    finally:
        torch.set_num_threads(old_threads)
    meta = dict(profile.meta)
    defs = dict(meta.get("op_definitions", {}))
    for op in ops:  # what was timed now, in the profiler's words
        key = op if op in profiler.OP_DEFINITIONS else f"{op.rsplit('_b', 1)[0]}_bN"
        if key in profiler.OP_DEFINITIONS:
            defs[key] = profiler.OP_DEFINITIONS[key]
    meta["op_definitions"] = defs
    meta["remeasured"] = [*meta.get("remeasured", []),
                          {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "why": why,
                           "threads": threads, "ops": changes}]
    return replace(profile, ops=new_ops, meta=meta)


def _median_ratio(old_points, new_points) -> float:
    ratios = sorted(n["median_s"] / o["median_s"] for o, n in zip(old_points, new_points) if o["median_s"] > 0)
    return ratios[len(ratios) // 2] if ratios else float("nan")


def _remeasure_table(profile: HardwareProfile, table: str, why: str, progress) -> HardwareProfile:
    """``profile`` with its ``sync`` or ``corun`` table(s) measured again for the rank counts it holds."""
    from adaqp.runtime.profiling import profiler, ranks

    require(profile.device == "cpu", f"profile {profile.name!r} is a {profile.device} profile: its {table} "
                                     "figures come from the shared-GPU benchmark; re-profile it")
    held = profile.corun_by_ranks if table == "corun" else {**profile.sync_s, **profile.sync_by_gap.get("exchange", {})}
    require(held, f"profile {profile.name!r} holds no {table} table to re-measure")
    top = max(int(k) for k in held)
    if table == "sync":
        new = dict(zip(("sync_s", "allreduce_sync_s", "sync_by_gap"), ranks.measure_sync(top, reps=SYNC_REPS)))
    else:
        new = {"corun_by_ranks": profiler.corun_table(profiler.full_grid(), top)}
    before = {name: dict(getattr(profile, name)) for name in TABLES[table]}
    if progress:
        for name, old in before.items():
            progress(f"  {name}: " + ", ".join(f"{k} ranks {old.get(k, 0):.4g} -> {v:.4g}"
                                               for k, v in sorted(new[name].items(), key=lambda kv: int(kv[0]))))
    meta = dict(profile.meta)
    meta["remeasured"] = [*meta.get("remeasured", []),
                          {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "why": why,
                           "tables": list(new), **({"reps": SYNC_REPS} if table == "sync" else {}), "before": before}]
    return replace(profile, **new, meta=meta)
