"""The co-run slowdown of each workload of ``adaqp validate``, measured right before it trains."""

from __future__ import annotations

from pathlib import Path


class Corun:
    """The co-run slowdown of ``ranks`` CPU ranks at each workload's own step
    (:func:`adaqp.costmodel.shapes.corun_step`: its SpMM and dense layer at the hidden width),
    measured by the co-run micro-benchmark (``measure``: ``runtime.profiling.ranks.measure_corun``)
    the first time a (ranks, dataset, hidden) trains in a round, and kept for the round's other
    link. Why here and not once in the profile: on a virtual machine the slowdown moves with the
    load on its host (for 2 ranks from 1.0 to 1.3 within hours), and it depends on the working
    set (a small partition's step stays in cache)."""

    def __init__(self, measure=None, log=print):
        self.measure, self.log = measure, log
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
        plan_dir.mkdir(parents=True, exist_ok=True)
        prepare_plan(cfg, plan_dir)  # the partition the runs then load
        stats = PlanStats.from_halo_plan(HaloPlan.load(plan_dir))
        for h in hiddens:
            if (dataset, ranks, h) not in self.factors:
                step = corun_step(stats, h)
                f = self._measure(ranks, **step)
                self.factors[(dataset, ranks, h)] = f
                self.log(f"    co-run of {ranks} ranks at {dataset.split(':')[0]}'s step ({step['rows']} rows, "
                         f"{step['nnz']} non-zeros, width {h}): {f:.3f}")
        return {h: self.factors[(dataset, ranks, h)] for h in hiddens}

    def _measure(self, ranks: int, rows: int, nnz: int, width: int) -> float:
        if self.measure is not None:
            return float(self.measure(ranks, rows, nnz, width))
        from adaqp.runtime.profiling.ranks import measure_corun

        return float(measure_corun(ranks, rows=rows, nnz=nnz, width=width, ranks=[ranks])[str(ranks)])
