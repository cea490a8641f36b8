"""``adaqp validate --op-timing in-epoch``: each workload's ops timed in epoch order right before it trains."""

from __future__ import annotations

from pathlib import Path

OP_TIMINGS = ("cold", "in-epoch")


class InEpoch:
    """Before a dataset trains in a cell, every rank's epoch of every model shape the cell runs
    (:func:`adaqp.costmodel.shapes.epoch_sequences`, the vanilla schedule and quant at each
    width of ``bits``) is timed op after op on synthetic tensors
    (:func:`adaqp.runtime.profiling.epoch_loop.in_epoch_profile`); the cell's predictions of that
    dataset read those points. Measured again in every cell: the machine's speed moves between
    cells (docs/results.md), and these ops are what the cell's epochs run next."""

    def __init__(self, base_profile: str, bits: tuple[int, ...], log, device: str = "cpu"):
        self.base, self.bits, self.log, self.device = base_profile, bits, log, device

    def before(self, cfgs, plan_dir: Path, graph, shape_of):
        """The profile the cell's predictions of ``cfgs`` (one dataset, one rank count) use."""
        from adaqp.costmodel.profile import load_profile
        from adaqp.costmodel.shapes import epoch_sequences
        from adaqp.costmodel.workload import PlanStats
        from adaqp.halo import HaloPlan
        from adaqp.runtime.profiling.epoch_loop import in_epoch_profile

        base = load_profile(self.base)
        stats = PlanStats.from_halo_plan(HaloPlan.load(plan_dir))
        sequences = []
        for shape in dict.fromkeys(shape_of(c, graph) for c in cfgs):
            sequences += epoch_sequences(stats, shape, "vanilla", 32, base)
            for b in self.bits:
                sequences += epoch_sequences(stats, shape, "quant", b, base)
        dataset = cfgs[0].dataset
        prof = in_epoch_profile(base, sequences, self.device, note=f"adaqp validate: {dataset}, {cfgs[0].nprocs} ranks")
        entry = prof.meta["measured_in_epoch"][-1]
        self.log(f"    ops of {dataset.split(':')[0]} timed in epoch order: {entry['calls_per_pass']} calls per pass, "
                 f"{entry['reps']} passes, {entry['elapsed_s']:.1f} s")
        return prof
