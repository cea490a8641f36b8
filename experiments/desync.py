"""Do ranks leave each exchange together? Measured against simulated.

The simulator shares a link among its flows max-min fairly, as a fluid. Ranks with similar
traffic therefore finish an exchange together and start their next compute together; on cores
they share, they then compute at once, each at the co-run speed. This experiment trains one
workload behind emulated hosts and simulates it with what ``adaqp validate`` would predict it
with: the exchange micro-benchmarked on a fresh emulated network of the same rate, the
workload's op sizes micro-benchmarked alone (``profile --for``), and its co-run slowdown
measured at its own step. It prints, measured beside simulated:

- per exchange of the epoch, how far apart the ranks come out of it (the last rank's end less the
  first's), the median over the epochs after warm-up;
- of the time at least one rank computes, the share during which k ranks compute at once;
- the epoch, its compute and its exposed communication (as ``adaqp validate`` reports them).

A rank computes while its main track has a span open and none of its exchange (``communicate``),
``wait`` or all-reduce spans is. That holds for the schedules whose compute waits for the
exchange (vanilla, quant); with overlap the compute under an exchange would be left out.

    python3 -m adaqp.experiments.desync [--ranks 4] [--link 100mbit] [--hidden 128] [--schedule vanilla]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

NOT_COMPUTE = ("communicate", "wait", "allreduce")


def _epoch(ev: dict) -> int:
    return ev.get("epoch") or 0  # simulated spans and spans before the first epoch mark: 0


def _merge(iv: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(iv):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        elif b > a:
            out.append((a, b))
    return out


def _subtract(keep: list[tuple[int, int]], cut: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``keep`` less ``cut``, both merged and sorted."""
    out, j = [], 0
    for a, b in keep:
        while j < len(cut) and cut[j][1] <= a:
            j += 1
        k, start = j, a
        while k < len(cut) and cut[k][0] < b:
            if cut[k][0] > start:
                out.append((start, cut[k][0]))
            start = max(start, cut[k][1])
            k += 1
        if start < b:
            out.append((start, b))
    return out


def compute_intervals(events: list[dict], min_epoch: int = 0) -> dict[int, list[tuple[int, int]]]:
    """Per rank, the merged ``(start_ns, end_ns)`` intervals in which it computes (epochs from
    ``min_epoch`` on): its main-track spans less its own exchange, wait and all-reduce spans."""
    main, cut = defaultdict(list), defaultdict(list)
    for ev in events:
        if _epoch(ev) < min_epoch:
            continue
        span = (ev["start_ns"], ev["end_ns"])
        if ev["name"] in NOT_COMPUTE:
            cut[ev["rank"]].append(span)
        elif ev["track"] == "main":
            main[ev["rank"]].append(span)
    return {r: _subtract(_merge(main[r]), _merge(cut[r])) for r in sorted(main)}


def concurrency(intervals: dict[int, list[tuple[int, int]]]) -> dict[int, float]:
    """``{k: share}`` of the time at least one rank computes during which exactly k do."""
    edges = sorted((t, d) for iv in intervals.values() for a, b in iv for t, d in ((a, 1), (b, -1)))
    time_at: dict[int, int] = defaultdict(int)
    n, last = 0, None
    for t, d in edges:
        if n > 0:
            time_at[n] += t - last
        n, last = n + d, t
    total = sum(time_at.values())
    return {k: time_at[k] / total for k in sorted(time_at)} if total else {}


def exchange_spreads(events: list[dict], min_epoch: int = 0) -> list[list[float]]:
    """Per exchange of an epoch (in the order each rank runs them), the seconds between the first
    and the last rank's end of it, one value per epoch from ``min_epoch`` on in which every rank
    ran that exchange."""
    ends: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for ev in sorted(events, key=lambda e: e["start_ns"]):
        if ev["name"] == "communicate" and _epoch(ev) >= min_epoch:
            ends[_epoch(ev)][ev["rank"]].append(ev["end_ns"])
    ranks = {ev["rank"] for ev in events}
    out: list[list[float]] = []
    for per_rank in ends.values():
        if set(per_rank) != ranks:
            continue
        for i in range(min(len(v) for v in per_rank.values())):
            col = [v[i] for v in per_rank.values()]
            while len(out) <= i:
                out.append([])
            out[i].append((max(col) - min(col)) / 1e9)
    return out


def report(measured: list[dict], simulated: list[dict], ranks: int, warmup: int,
           phases: dict | None = None) -> list[str]:
    """Lines: exchange spreads and compute concurrency, measured beside simulated; with ``phases``
    (``{"measured" | "simulated": {"epoch" | "compute" | "comm": seconds}}``) the epoch too."""
    m_sp, s_sp = exchange_spreads(measured, warmup), exchange_spreads(simulated)
    lines = [f"{'exchange':>8}  {'measured spread':>16}  {'simulated':>10}   (ms; last rank out less first)"]
    for i, vals in enumerate(m_sp):
        sim = s_sp[i][0] * 1e3 if i < len(s_sp) and s_sp[i] else float("nan")
        lines.append(f"{i + 1:>8}  {statistics.median(vals) * 1e3:16.2f}  {sim:10.2f}")
    m_c, s_c = (concurrency(compute_intervals(ev, w)) for ev, w in ((measured, warmup), (simulated, 0)))
    lines.append(f"{'ranks computing':>15}  {'measured':>9}  {'simulated':>9}   (share of the time any rank computes)")
    for k in range(1, ranks + 1):
        lines.append(f"{k:>15}  {m_c.get(k, 0.0):9.1%}  {s_c.get(k, 0.0):9.1%}")
    if phases:
        lines.append(f"{'epoch phase':>15}  {'measured':>9}  {'simulated':>9}   (ms; slowest rank, median after warm-up)")
        for ph, label in (("epoch", "epoch"), ("compute", "compute"), ("comm", "exposed comm")):
            lines.append(f"{label:>15}  {phases['measured'][ph] * 1e3:9.1f}  {phases['simulated'][ph] * 1e3:9.1f}")
    return lines


def run(dataset: str, ranks: int, link: str, hidden: int, model: str, schedule: str, bits: int,
        epochs: int, warmup: int, work: Path, log=print) -> dict:
    """Train and simulate one workload: ``{"measured", "simulated"}`` span events and ``"phases"``."""
    from dataclasses import replace

    from adaqp.costmodel.profile import load_profile
    from adaqp.costmodel.shapes import workload_shapes
    from adaqp.experiments.op_regimes import prepare_workload
    from adaqp.experiments.validate import Grid, cluster_for, measure_network, measured_phases
    from adaqp.experiments.validate_corun import Corun
    from adaqp.runtime.profiling.profiler import measure_shapes
    from adaqp.runtime.run import run_configs
    from adaqp.simulator import simulate

    grid = replace(Grid(), datasets=(dataset,), ranks=(ranks,), links=(link,), schedules=(schedule,),
                   bits=(str(bits),), models=(model,), hiddens=(hidden,), epochs=epochs, warmup=warmup,
                   profile_for=False)
    cfg, plan_dir, stats, shape = prepare_workload(grid, work)
    base = load_profile(grid.profile)
    log(f"measuring the exchange on {ranks} emulated hosts at {link} ...")
    cluster = cluster_for(ranks, link, measure_network(ranks, link))
    log("timing the workload's op sizes alone, cold (profile --for) ...")
    prof = measure_shapes(base, workload_shapes(stats, shape, (bits,), base), progress=False)
    corun = Corun(None, log, grid.corun_rounds).before(cfg, plan_dir, (hidden,))[hidden]
    prof = prof.with_corun(ranks, corun)
    log(f"training {ranks} ranks, {schedule}, {epochs} epochs ...")
    per_rank = run_configs([cfg], plan_dir, link)[0]
    sim = simulate(stats, shape, schedule, cluster, prof, cfg.uniform_bits)
    meas = measured_phases([r for res in per_rank for r in res["records"]], warmup, overlap=False)
    return {"measured": [ev for res in per_rank for ev in res["events"]],
            "simulated": [ev for evs in sim.events for ev in evs],
            "phases": {"measured": meas, "simulated": {"epoch": sim.epoch_time_s, "compute": sim.compute_time_s,
                                                       "comm": sim.exposed_comm_s}}}


def main(argv=None) -> int:
    from adaqp.experiments.op_regimes import parse_workload, workload_parser

    ap = workload_parser("python3 -m adaqp.experiments.desync", __doc__.split("\n")[0], 4, 128, "100mbit",
                         "emulated hosts' link rate (needs root), e.g. 1gbit")
    ap.add_argument("--schedule", default="vanilla", choices=("vanilla", "quant"))
    ap.add_argument("--bits", type=int, default=4, choices=(1, 2, 4, 8), help="quant: message width")
    a = parse_workload(ap, argv)
    from adaqp.errors import AdaqpInputError

    try:
        from adaqp.runtime.emulate import check_available

        check_available()
        with tempfile.TemporaryDirectory() as tmp:
            out = run(a.dataset, a.ranks, a.link, a.hidden, a.model, a.schedule, a.bits, a.epochs, a.warmup,
                      Path(tmp))
    except AdaqpInputError as e:  # a bad dataset or link, no root: one line, not a traceback
        print(f"desync: {e}", file=sys.stderr)
        return 2
    print("\n".join(report(out["measured"], out["simulated"], a.ranks, a.warmup, out["phases"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
