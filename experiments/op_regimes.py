"""The same ops in three regimes: timed alone and cold, timed in epoch order, and inside training.

One workload (default: the validation's SBM graph, 2 ranks, GCN 3 x 64, vanilla), in one sitting:

1. ``cold``: every op size of the workload micro-benchmarked alone after a cache eviction
   (:func:`adaqp.runtime.profiling.profiler.measure_shapes`, what ``profile --for`` does);
2. ``in-epoch``: the workload's ops timed in the order an epoch runs them
   (:func:`adaqp.runtime.profiling.epoch_loop.in_epoch_profile`);
3. ``training``: the configuration trained (``--link``: behind emulated hosts with shaped links),
   the runtime's own phase timers, median over the epochs after warm-up, per rank.

Each regime's phase times are printed side by side: the aggregation (central, marginal), the
dense transforms, the message coding, the optimizer and the whole compute (the epoch less its
exchanges and all-reduce). The predicted phases are the cost model's program with the profile of
that regime, before any co-run factor.

    python3 -m adaqp.experiments.op_regimes [--link 100mbit] [--ranks 2] [--hidden 64] [--epochs 12]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

# runtime phase timer -> the cost model's program phase it is compared with
PHASES = {"central": "central", "marginal": "marginal", "dense": "dense", "pack": "quantize",
          "unpack": "dequantize", "optimizer": "optimizer"}


def predicted_by_phase(stats, shape, profile) -> list[dict[str, float]]:
    """Per rank, the vanilla program's compute seconds by phase (no co-run factor, no overlap
    slowdown), with ``compute`` their sum."""
    from adaqp.costmodel.program import Compute, build_program

    prog = build_program(stats, shape, "vanilla", profile)
    out = []
    for r in range(stats.num_parts):
        ph: dict[str, float] = {}
        for s in prog:
            if isinstance(s, Compute):
                ph[s.phase] = ph.get(s.phase, 0.0) + float(s.seconds[r])
        ph["compute"] = sum(ph.values())
        out.append(ph)
    return out


def measured_by_phase(records: list[dict], ranks: int, warmup: int) -> list[dict[str, float]]:
    """Per rank, the median over the epochs after ``warmup`` of each runtime phase (seconds), with
    ``compute``: the epoch less its blocking exchanges and all-reduce."""
    from adaqp.experiments.validate import measured_phases

    out = []
    for r in range(ranks):
        mine = [x for x in records if x["rank"] == r]
        rs = [x for x in mine if x["epoch"] >= warmup]
        m = {ph: statistics.median(x[f"{ph}_s"] for x in rs) for ph in PHASES}
        m["compute"] = measured_phases(mine, warmup, overlap=False)["compute"]  # as validate measures it
        out.append(m)
    return out


def table(measured, in_epoch, cold) -> list[str]:
    """Lines: per rank and phase, training's milliseconds beside each regime's prediction."""
    lines = [f"{'rank':>4}  {'phase':<10} {'training':>9} {'in-epoch':>9} {'cold':>9}   (ms)"]
    for r, m in enumerate(measured):
        for ph in (*PHASES, "compute"):
            pred = PHASES.get(ph, ph)
            lines.append(f"{r:>4}  {ph:<10} {m[ph] * 1e3:9.2f} {in_epoch[r].get(pred, 0.0) * 1e3:9.2f} "
                         f"{cold[r].get(pred, 0.0) * 1e3:9.2f}")
    return lines


def prepare_workload(grid, work: Path):
    """``(cfg, plan_dir, stats, shape)`` of the one configuration ``grid`` holds, partitioned under ``work``."""
    from adaqp.costmodel.workload import PlanStats
    from adaqp.data.spec import load_dataset
    from adaqp.experiments.validate import model_shape, plan_dir_for, train_configs
    from adaqp.halo import HaloPlan
    from adaqp.runtime.prepare import prepare_plan

    dataset, ranks = grid.datasets[0], grid.ranks[0]
    cfg = train_configs(grid, dataset, ranks, None)[0]
    graph, plan_dir = load_dataset(dataset), plan_dir_for(work, dataset, ranks)
    plan_dir.mkdir(parents=True, exist_ok=True)
    prepare_plan(cfg, plan_dir, graph)
    return cfg, plan_dir, PlanStats.from_halo_plan(HaloPlan.load(plan_dir)), model_shape(cfg, graph)


def run(dataset: str, ranks: int, link: str | None, hidden: int, model: str, epochs: int, warmup: int,
        work: Path, log=print) -> dict:
    """The three regimes of one workload; returns ``{"measured", "in_epoch", "cold"}`` per rank."""
    from dataclasses import replace

    from adaqp.costmodel.profile import load_profile
    from adaqp.costmodel.shapes import epoch_sequences, workload_shapes
    from adaqp.experiments.validate import Grid
    from adaqp.runtime.profiling.epoch_loop import in_epoch_profile
    from adaqp.runtime.profiling.profiler import measure_shapes
    from adaqp.runtime.run import run_configs

    grid = replace(Grid(), datasets=(dataset,), ranks=(ranks,), links=(link,), schedules=("vanilla",),
                   models=(model,), hiddens=(hidden,), epochs=epochs, warmup=warmup, profile_for=False)
    cfg, plan_dir, stats, shape = prepare_workload(grid, work)
    base = load_profile(grid.profile)
    log("timing the workload's op sizes alone, cold (profile --for) ...")
    cold = measure_shapes(base, workload_shapes(stats, shape, (4,), base), progress=False)
    log("timing them in epoch order ...")
    warm = in_epoch_profile(base, epoch_sequences(stats, shape, "vanilla", 32, base))
    log(f"training {cfg.nprocs} ranks, link {link or 'loopback'}, {epochs} epochs ...")
    records = [x for res in run_configs([cfg], plan_dir, link)[0] for x in res["records"]]
    return {"measured": measured_by_phase(records, ranks, warmup),
            "in_epoch": predicted_by_phase(stats, shape, warm), "cold": predicted_by_phase(stats, shape, cold)}


def workload_parser(prog: str, description: str, ranks: int, hidden: int, link: str | None,
                    link_help: str) -> argparse.ArgumentParser:
    """The one-workload flags these experiments share: dataset, ranks, link, hidden, model, epochs."""
    from adaqp.experiments.validate import DEFAULT_DATASET

    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("--dataset", default=DEFAULT_DATASET)
    ap.add_argument("--ranks", type=int, default=ranks)
    ap.add_argument("--link", default=link, help=link_help)
    ap.add_argument("--hidden", type=int, default=hidden)
    ap.add_argument("--model", default="gcn", choices=("gcn", "sage"))
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=3)
    return ap


def parse_workload(ap: argparse.ArgumentParser, argv) -> argparse.Namespace:
    a = ap.parse_args(argv)
    if a.ranks < 2 or a.epochs <= a.warmup or a.warmup < 1 or a.hidden < 1:
        ap.error("need --ranks >= 2, --hidden >= 1 and --epochs > --warmup >= 1")
    return a


def main(argv=None) -> int:
    a = parse_workload(workload_parser("python3 -m adaqp.experiments.op_regimes", __doc__.split("\n")[0], 2, 64,
                                       None, "e.g. 100mbit (root: emulated hosts); default loopback"), argv)
    from adaqp.errors import AdaqpInputError

    try:
        if a.link is not None:
            from adaqp.runtime.emulate import check_available

            check_available()
        with tempfile.TemporaryDirectory() as tmp:
            out = run(a.dataset, a.ranks, a.link, a.hidden, a.model, a.epochs, a.warmup, Path(tmp))
    except AdaqpInputError as e:  # a bad dataset spec, no root for --link: one line, not a traceback
        print(f"op_regimes: {e}", file=sys.stderr)
        return 2
    print("\n".join(table(out["measured"], out["in_epoch"], out["cold"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
