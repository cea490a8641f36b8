"""The second half of ``adaqp demo``: predict the epoch (analytic and simulated) on this machine,
measure it for real, and ask what-if on a GPU cluster — the three questions of the tool."""

from __future__ import annotations

SCHEDULES = (("vanilla", 32), ("overlap", 32), ("quant", 4), ("adaqp", 4))
MEASURED = (("vanilla", "32"), ("adaqp", "4"))
WHATIF_CLUSTER = "a100-8x-nvlink-2node-100gbe"


def predictions(graph, plan, hidden: int, layers: int, cluster_name: str, profile_name=None) -> list[dict]:
    """Analytic and simulated epoch time of each schedule on a bundled cluster, resized to the plan."""
    from adaqp.costmodel.analytic import estimate
    from adaqp.costmodel.bundled import load_cluster
    from adaqp.costmodel.profile import load_profile
    from adaqp.costmodel.program import ModelShape
    from adaqp.costmodel.workload import PlanStats
    from adaqp.simulator import simulate

    stats = PlanStats.from_halo_plan(plan)
    cluster = load_cluster(cluster_name).with_ranks(plan.num_parts)
    profile = load_profile(profile_name or cluster.profile)
    shape = ModelShape("gcn", (graph.num_features,) + (hidden,) * (layers - 1) + (graph.num_classes,))
    rows = []
    for schedule, bits in SCHEDULES:
        e = estimate(stats, shape, schedule, cluster, profile, bits)
        s = simulate(stats, shape, schedule, cluster, profile, bits, trace=False)
        rows.append({"cluster": cluster.name, "schedule": schedule, "bits": bits,
                     "analytic_ms": e.epoch_time_s * 1e3, "simulated_ms": s.epoch_time_s * 1e3,
                     "comm_ms": s.comm_time_s * 1e3})
    base = rows[0]["simulated_ms"]
    for r in rows:
        r["speedup"] = base / r["simulated_ms"]
    return rows


def measure(dataset: str, parts: int, hidden: int, layers: int, epochs: int, out) -> dict:
    """Train each measured schedule for a few epochs on this machine; median epoch time, accuracy."""
    from adaqp.runtime.config import TrainConfig
    from adaqp.runtime.model import ModelConfig
    from adaqp.runtime.run import run_local

    got = {}
    for schedule, bits in MEASURED:
        cfg = TrainConfig(dataset=dataset, nprocs=parts, model=ModelConfig("gcn", layers, hidden),
                          epochs=epochs, schedule=schedule, bits=bits, eval_every=epochs,
                          warmup_epochs=min(3, epochs - 1), progress=False)
        s = run_local(cfg, None if out is None else out / f"train_{schedule}")
        got[schedule] = s
    return got
