"""The second half of ``adaqp demo``: the three questions of the tool on this machine.

1. Profile quickly: the emulated network's exchange (a micro-benchmark on the shaped links, when
   root allows them) beside this machine's measured compute profile.
2. Plan: solve a BitPlan under a time budget for that cluster, then simulate vanilla and the plan.
3. Measure: train both for a few epochs for real on the same partition and links, and put the
   measured epochs beside the predictions. Both timelines are written as Chrome traces.
Then ask what-if on a GPU cluster.
"""

from __future__ import annotations

import sys
from pathlib import Path

WHATIF_CLUSTER = "a100-8x-nvlink-2node-100gbe"
WHATIF_SCHEDULES = (("vanilla", 32), ("overlap", 32), ("quant", 4), ("adaqp", 4))
LINK = "100mbit"
BUDGET = "0.3x"


def local_cluster(parts: int, use_link: bool):
    """(cluster, link, note): emulated hosts behind shaped links when they work here, else loopback."""
    from adaqp.errors import AdaqpInputError
    from adaqp.experiments.validate import cluster_for, measure_network

    if use_link:
        try:
            from adaqp.runtime.emulate import check_available

            check_available()
            measured = measure_network(parts, LINK)
            bw = measured[1]
            return cluster_for(parts, LINK, measured), LINK, (
                f"{parts} emulated hosts behind {LINK} links; the exchange measured {bw / 1e6:.2f} MB/s "
                f"per host ({bw * 8 / 1e6:.0f} Mbit/s of the nominal {LINK})")
        except AdaqpInputError as e:
            print(f"adaqp demo: {e}; using plain loopback ranks", file=sys.stderr)
    return cluster_for(parts, None), None, f"{parts} ranks on loopback (no shaped links)"


def plan_and_predict(graph, plan, shape, cluster, profile, out: Path) -> tuple[dict, object]:
    """Solve a BitPlan under ``BUDGET`` and simulate vanilla and adaqp with it (traces to ``out``)."""
    from adaqp.costmodel.workload import PlanStats
    from adaqp.simulator import chrome_trace, simulate
    from adaqp.solver.plan import solve_bitplan

    from adaqp.errors import AdaqpInputError

    stats = PlanStats.from_halo_plan(plan)
    kw = dict(features=graph.features, schedule="adaqp", time_limit=10.0)
    try:
        res = solve_bitplan(plan, stats, shape, cluster, profile, BUDGET, **kw)
    except AdaqpInputError as e:  # e.g. loopback on a CPU: coding costs more than the bytes it saves
        print(f"adaqp demo: {e}; solving the reference's lambda form instead", file=sys.stderr)
        res = solve_bitplan(plan, stats, shape, cluster, profile, None, mode="lambda", **kw)
    sims = {"vanilla": simulate(stats, shape, "vanilla", cluster, profile, 32),
            "adaqp": simulate(stats, shape, "adaqp", cluster, profile, res.bitplan)}
    for name, s in sims.items():
        chrome_trace(s.events, out / f"simulated_{name}.trace.json")
    return sims, res


def measure(dataset: str, parts: int, shape, plan_dir: Path, bitplan_file: Path, link, cluster_file: str,
            epochs: int, out: Path) -> dict:
    """Train vanilla and adaqp (the solved plan) for ``epochs`` on the same partition and links."""
    from adaqp.runtime.config import TrainConfig
    from adaqp.runtime.model import ModelConfig
    from adaqp.runtime.run import run_local

    got = {}
    for schedule, bits in (("vanilla", "32"), ("adaqp", str(bitplan_file))):
        cfg = TrainConfig(dataset=dataset, nprocs=parts, model=ModelConfig("gcn", shape.layers, shape.widths[1]),
                          epochs=epochs, schedule=schedule, bits=bits, eval_every=epochs, plan_dir=str(plan_dir),
                          warmup_epochs=min(3, epochs - 1), progress=False, cluster=cluster_file, timeout_s=300.0)
        got[schedule] = run_local(cfg, out / f"train_{schedule}", link=link)
    return got


def whatif(stats, shape) -> list[dict]:
    """Each schedule simulated on a GPU cluster resized to the plan's part count."""
    from adaqp.costmodel.bundled import load_cluster
    from adaqp.costmodel.profile import load_profile
    from adaqp.simulator import simulate

    cluster = load_cluster(WHATIF_CLUSTER).with_ranks(stats.num_parts)
    profile = load_profile(cluster.profile)
    rows = []
    for schedule, bits in WHATIF_SCHEDULES:
        s = simulate(stats, shape, schedule, cluster, profile, bits, trace=False)
        rows.append({"cluster": cluster.name, "schedule": schedule, "bits": bits,
                     "simulated_ms": s.epoch_time_s * 1e3, "comm_ms": s.comm_time_s * 1e3})
    for r in rows:
        r["speedup"] = rows[0]["simulated_ms"] / r["simulated_ms"]
    return rows
