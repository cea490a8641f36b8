"""``--bits adaptive``: the first K epochs at 8 bits while row ranges are traced, then every K
epochs a re-solve of the BitPlan on rank 0 (the solver, against the cost model), broadcast to all
ranks; ``TrainConfig.max_replans`` stops after that many (``adaqp validate`` solves once, so the
measured epochs run the one plan it predicts). Solve time is reported separately from epoch time.

The re-solve uses ``TrainConfig.time_budget`` (e.g. ``0.5x`` of the fp32 exchange time, or
``1.2s`` per epoch); without one it uses the reference's lambda form (lambda = 0.5), which needs no
budget. When the budget is infeasible the re-solve falls back to the lambda form, and says so.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from adaqp.errors import AdaqpInputError
from adaqp.plans import BitPlan
from adaqp.runtime import faults
from adaqp.runtime.objects import all_gather_json, broadcast_json

FIRST_BITS = 8


class AdaptiveBits:
    def __init__(self, trainer, plan_dir) -> None:
        self.tr, self.cfg, self.plan_dir = trainer, trainer.cfg, plan_dir
        self.every = self.cfg.replan_every

    def solves_after(self, epoch: int) -> bool:
        """Whether a re-solve follows ``epoch``: every K-th epoch but the last, at most
        ``max_replans`` of them (counted by epoch number, so a resumed run keeps the count)."""
        n, cap = (epoch + 1) // self.every, self.cfg.max_replans
        return (epoch + 1) % self.every == 0 and epoch + 1 < self.cfg.epochs and (cap is None or n <= cap)

    def before_epoch(self, epoch: int) -> None:
        # trace only the epoch that feeds the next solve: tracing costs a max/min per message
        self.tr.ctx.exchanger.trace_ranges = self.solves_after(epoch)

    def after_epoch(self, epoch: int) -> float | None:
        """Re-solve after every K-th epoch (except the last); returns the solve time on rank 0."""
        if not self.solves_after(epoch):
            return None
        ex = self.tr.ctx.exchanger
        # JSON keys are strings, so the tuple-keyed dicts travel as [key, array] pairs
        ranges = [[list(k), v.numpy()] for k, v in ex.row_ranges.items()]
        gathered = all_gather_json(ranges)
        t0 = time.perf_counter()
        solved = self._solve({tuple(k): v for part in gathered for k, v in part}) if self.tr.rank == 0 else None
        solve_s = time.perf_counter() - t0
        faults.point("resolve")
        layers, parts, bits = broadcast_json(solved, src=0)
        plan = BitPlan(layers, parts, {tuple(k): np.asarray(v, np.int8) for k, v in bits})
        ex.set_bitplan(plan)
        self.tr.bitplan = plan
        return solve_s

    def _solve(self, ranges: dict):
        """Rank 0: the solver's plan as plain values and arrays (what broadcast_json can carry)."""
        from adaqp.costmodel.bundled import load_cluster
        from adaqp.costmodel.profile import load_profile
        from adaqp.costmodel.program import ModelShape
        from adaqp.costmodel.workload import PlanStats
        from adaqp.data.spec import load_dataset
        from adaqp.halo import HaloPlan
        from adaqp.solver.plan import solve_bitplan

        cfg, d = self.cfg, self.tr.data
        halo = HaloPlan.load(self.plan_dir)
        cluster = load_cluster(cfg.cluster).with_ranks(self.tr.world)
        profile = load_profile(cfg.profile or cluster.profile)
        shape = ModelShape.of(cfg.model, d.in_dim, d.num_classes)
        stats = PlanStats.from_halo_plan(halo)
        features = load_dataset(cfg.dataset).features
        kw = dict(features=features, ranges=ranges, schedule=cfg.schedule, time_limit=10.0)
        res = None
        if cfg.time_budget:
            try:
                res = solve_bitplan(halo, stats, shape, cluster, profile, cfg.time_budget, **kw)
            except AdaqpInputError as e:
                print(f"adaptive: {e}; re-solving in the lambda form instead", file=sys.stderr)
        if res is None:
            res = solve_bitplan(halo, stats, shape, cluster, profile, None, mode="lambda", **kw)
        plan = res.bitplan
        return plan.num_layers, plan.num_parts, [[list(k), plan.channel(*k).copy()] for k in plan.channels()]


def initial_plan(pair_rows: np.ndarray, layers: int) -> BitPlan:
    return BitPlan.uniform(pair_rows, layers, FIRST_BITS)
