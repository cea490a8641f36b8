"""The co-run slowdown of each workload of ``adaqp validate``, measured right before it trains."""

from __future__ import annotations

from pathlib import Path


class Corun:
    """The co-run slowdown of ``ranks`` CPU ranks at each workload's own step
    (:func:`adaqp.costmodel.shapes.corun_step`: its SpMM and dense layer at the hidden width),
    measured by the co-run micro-benchmark (``measure``; None: ``runtime.profiling.ranks.corun_at``)
    over ``rounds`` rounds the first time a (ranks, dataset, hidden) trains in a round, and kept for the round's other
    link. Why here and not once in the profile: on a virtual machine the slowdown moves with the
    load on its host (for 2 ranks from 1.0 to 1.3 within hours), and it depends on the working
    set (a small partition's step stays in cache)."""

    def __init__(self, measure, log, rounds: int):
        if measure is None:
            from adaqp.runtime.profiling.ranks import corun_at as measure
        self.measure, self.log, self.rounds = measure, log, rounds
        self.factors: dict[tuple[str, int, int], float] = {}

    def before(self, cfg, plan_dir: Path, hiddens) -> dict[int, float]:
        """``{hidden: factor}`` for the workload ``cfg`` trains (partitioned here if not yet)."""
        from adaqp.costmodel.shapes import corun_step
        from adaqp.costmodel.workload import PlanStats
        from adaqp.halo import HaloPlan
        from adaqp.runtime.prepare import prepare_plan

        dataset, ranks = cfg.dataset, cfg.nprocs
        if ranks < 2:
            return {}
        todo = [h for h in hiddens if (dataset, ranks, h) not in self.factors]
        if todo:  # the round's other link finds them all measured: no partition to load
            plan_dir.mkdir(parents=True, exist_ok=True)
            prepare_plan(cfg, plan_dir)  # the partition the runs then load
            stats = PlanStats.from_halo_plan(HaloPlan.load(plan_dir))
        for h in todo:
            step = corun_step(stats, h)
            f = self.factors[(dataset, ranks, h)] = float(self.measure(ranks, **step, rounds=self.rounds))
            self.log(f"    co-run of {ranks} ranks at {dataset.split(':')[0]}'s step ({step['rows']} rows, "
                     f"{step['nnz']} non-zeros, width {h}): {f:.3f}")
        return {h: self.factors[(dataset, ranks, h)] for h in hiddens}
