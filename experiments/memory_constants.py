"""Measure the two CPU constants of the memory model on this machine, on graphs `validate` never runs.

    python3 -m adaqp.experiments.memory_constants [--epochs 4] [--profile P --out FILE]

``costmodel.memory`` predicts a CPU rank's resident growth as ``live x CPU_ALLOCATOR_SLACK``,
plus ``CPU_RANK_OVERHEAD_BYTES`` for the first run in a process. Here each workload (CiteSeer,
GCN 3 x 256; a 40,000-node SBM with 128 features, GCN 3 x 256; an R-MAT graph of 4,096 nodes,
SAGE 3 x 128; none of them in `validate`'s grid) trains twice in one process group, fp32 and
2 ranks on loopback, as `validate` runs a cell, and a 400-node graph with 8 features trains once:

* **slack**: the second run's measured growth over the model's live bytes (the overhead is paid
  by then), the median over workloads and ranks;
* **overhead**: the tiny graph's growth less its slack-scaled live bytes.

Prints both beside the constants the model carries; with ``--out``, writes profile ``P`` (a
bundled name or a file; default cpu-2core) with both as its ``cpu_memory``, which `estimate`,
`simulate` and `validate` then predict with. Nothing here reads `validate`'s runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from adaqp.errors import AdaqpInputError, require

WORKLOADS = (("citeseer", "gcn", 256), ("sbm:nodes=40000,classes=8,feat=128,deg=10,seed=3", "gcn", 256),
             ("rmat:scale=12,edgefactor=8,feat=128,classes=8,seed=3", "sage", 128))
TINY = ("sbm:nodes=400,classes=2,feat=8,deg=4,seed=3", "gcn", 16)


def _configs(dataset: str, model: str, hidden: int, runs: int, epochs: int):
    from adaqp.runtime.config import TrainConfig
    from adaqp.runtime.model import ModelConfig

    cfg = TrainConfig(dataset=dataset, nprocs=2, model=ModelConfig(model, 3, hidden), epochs=epochs,
                      eval_every=epochs, progress=False, schedule="vanilla", bits="32")
    return [cfg] * runs


def measure(dataset: str, model: str, hidden: int, runs: int, epochs: int, work: Path) -> list[dict]:
    """Per run and rank: the measured resident growth and the model's live bytes."""
    from adaqp.costmodel.memory import memory_terms
    from adaqp.costmodel.program import ModelShape
    from adaqp.costmodel.workload import PlanStats
    from adaqp.data.spec import load_dataset
    from adaqp.halo import HaloPlan
    from adaqp.runtime.run import run_configs

    cfgs = _configs(dataset, model, hidden, runs, epochs)
    plan_dir = work / f"plan-{abs(hash(dataset))}"
    results = run_configs(cfgs, plan_dir)
    graph = load_dataset(dataset)
    live = sum(memory_terms(PlanStats.from_halo_plan(HaloPlan.load(plan_dir)),
                            ModelShape.of(cfgs[0].model, graph.num_features, graph.num_classes)).values())
    out = []
    for i, per_rank in enumerate(results):
        for r, res in enumerate(per_rank):
            require(res.get("peak_memory_bytes") is not None, "this platform does not report resident memory")
            out.append({"dataset": dataset, "run": i, "rank": r, "rss": float(res["peak_memory_bytes"]),
                        "live": float(live[r])})
    return out


def constants(rows: list[dict], tiny: list[dict]) -> dict:
    """``slack``: median of later runs' growth over live bytes; ``overhead_bytes``: the tiny graph's
    growth less its live bytes times that slack (median over its ranks)."""
    slack = statistics.median(r["rss"] / r["live"] for r in rows if r["run"] > 0)
    overhead = statistics.median(r["rss"] - slack * r["live"] for r in tiny)
    return {"slack": slack, "overhead_bytes": overhead,
            "slack_by_dataset": {d: statistics.median(r["rss"] / r["live"] for r in rows
                                                      if r["run"] > 0 and r["dataset"] == d)
                                 for d in dict.fromkeys(r["dataset"] for r in rows)}}


def main(argv: list[str] | None = None) -> int:
    from adaqp.costmodel.memory import CPU_ALLOCATOR_SLACK, CPU_RANK_OVERHEAD_BYTES

    ap = argparse.ArgumentParser(prog="python3 -m adaqp.experiments.memory_constants",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=4, help="epochs per run (default 4)")
    ap.add_argument("--profile", default="cpu-2core", help="with --out: the profile to write them into")
    ap.add_argument("--out", type=Path, default=None, help="write --profile with the measured cpu_memory here")
    args = ap.parse_args(argv)
    try:
        from adaqp.costmodel.profile import load_profile

        require(args.epochs >= 1, f"--epochs must be >= 1, got {args.epochs}")
        base = load_profile(args.profile) if args.out is not None else None
        with tempfile.TemporaryDirectory(prefix="adaqp-memconst-") as tmp:
            work = Path(tmp)
            rows = []
            for i, (ds, model, hidden) in enumerate(WORKLOADS):
                print(f"[{i + 1}/{len(WORKLOADS) + 1}] {ds}, {model} 3 x {hidden}: two fp32 runs, 2 ranks", flush=True)
                rows += measure(ds, model, hidden, 2, args.epochs, work)
            print(f"[{len(WORKLOADS) + 1}/{len(WORKLOADS) + 1}] {TINY[0]}: one run", flush=True)
            tiny = measure(*TINY, 1, args.epochs, work)
    except AdaqpInputError as e:
        print(f"memory_constants: {e}", file=sys.stderr)
        return 2
    got = constants(rows, tiny)
    for r in rows:
        print(f"  {r['dataset'][:40]:<40} run {r['run']} rank {r['rank']}: growth {r['rss'] / 2**20:7.1f} MiB, "
              f"live {r['live'] / 2**20:7.1f} MiB, ratio {r['rss'] / r['live']:.2f}")
    print("slack per workload (later run): " + ", ".join(f"{d.split(':')[0]} {v:.2f}"
                                                           for d, v in got["slack_by_dataset"].items()))
    print(f"allocator slack {got['slack']:.2f} (the model carries {CPU_ALLOCATOR_SLACK}); "
          f"process overhead {got['overhead_bytes'] / 2**20:.0f} MiB (the model carries "
          f"{CPU_RANK_OVERHEAD_BYTES / 2**20:.0f})")
    if base is not None:
        try:
            write_profile(base, got, args.out, args.epochs)
        except OSError as e:
            print(f"memory_constants: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
            return 2
        print(f"wrote {args.out} ({base.name} with cpu_memory: slack {got['slack']:.2f}, "
              f"overhead {got['overhead_bytes'] / 2**20:.0f} MiB)")
    return 0


def write_profile(base, got: dict, out: Path, epochs: int) -> Path:
    """``base`` with the measured constants as its ``cpu_memory``, and how they were measured in
    its ``meta``."""
    import dataclasses
    from datetime import datetime, timezone

    meta = {**base.meta, "cpu_memory": {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "by": "python3 -m adaqp.experiments.memory_constants",
        "epochs": epochs, "workloads": [f"{d} {m} 3x{h}" for d, m, h in WORKLOADS],
        "slack_by_dataset": {d: round(v, 3) for d, v in got["slack_by_dataset"].items()}}}
    prof = dataclasses.replace(base, meta=meta, cpu_memory={"allocator_slack": round(max(1.0, got["slack"]), 3),
                                                            "rank_overhead_bytes": float(max(0, round(got["overhead_bytes"])))})
    return prof.save(out)


if __name__ == "__main__":
    raise SystemExit(main())
