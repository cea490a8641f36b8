"""The simulator's entry points: objects in, :class:`SimResult` out (no files read).

Experiments call :func:`simulate` in a loop — build the stats, shape, cluster and profile once and
vary the schedule, bits or cluster. :func:`simulate_program` plays a hand-made program (tests,
what-if edits of a built one).
"""

from __future__ import annotations

import numpy as np

from adaqp.cluster import ClusterSpec
from adaqp.costmodel.profile import HardwareProfile
from adaqp.costmodel.program import Compute, Exchange, ModelShape, build_program
from adaqp.costmodel.workload import PlanStats
from adaqp.errors import require
from adaqp.schedule import Schedule
from adaqp.simulator.engine import Epoch
from adaqp.simulator.fluid import SHARING
from adaqp.simulator.result import SimResult, build_result

__all__ = ["simulate", "simulate_program"]


def simulate(stats: PlanStats, shape: ModelShape, schedule: Schedule | str, cluster: ClusterSpec,
             profile: HardwareProfile, bits=32, *, sharing: str = "fair", trace: bool = True,
             merge_rel: float = 0.0) -> SimResult:
    """One simulated epoch of ``shape`` on ``cluster`` with the plan ``stats``.

    ``bits``: a uniform width (used when the schedule quantizes) or a BitPlan. ``sharing``: how
    concurrent flows divide a link (``fair``, the default, or ``fifo``; see :mod:`.fluid`).
    ``trace=False`` skips the per-rank trace events (a little faster in sweeps). ``merge_rel``:
    a flow with less than this fraction of its bytes left drains with the flow that triggered the
    update (default 0: exact). Irregular traffic at hundreds of ranks has a drain time per flow,
    each a bandwidth re-division; 1e-3 .. 1e-2 cuts those several-fold for an error of at most
    that fraction of each flow's duration.
    """
    _check_ranks(cluster, stats.num_parts)
    from adaqp.costmodel.durations import overlap_interference
    from adaqp.costmodel.profile import check_fits

    check_fits(profile, cluster)
    # unscaled: the engine plays the ranks' sharing of compute (analytic: durations.compute_scale)
    program = build_program(stats, shape, schedule, profile, bits,
                            interference=overlap_interference(cluster, profile))
    return simulate_program(program, cluster, profile,
                            sharing=sharing, trace=trace, merge_rel=merge_rel)


def simulate_program(program: list, cluster: ClusterSpec, profile: HardwareProfile, *,
                     sharing: str = "fair", trace: bool = True, merge_rel: float = 0.0) -> SimResult:
    """Play a program of Compute / Exchange / AllReduce steps (see costmodel/program.py)."""
    require(sharing in SHARING, f"sharing must be one of {', '.join(SHARING)}, got {sharing!r}")
    for step in program:
        if isinstance(step, Compute):
            _check_ranks(cluster, np.shape(step.seconds)[0])
        elif isinstance(step, Exchange):
            _check_ranks(cluster, np.shape(step.traffic.nbytes)[0])
    return build_result(Epoch(program, cluster, profile, sharing, trace, merge_rel).run())


def _check_ranks(cluster: ClusterSpec, parts: int) -> None:
    require(cluster.num_ranks == parts, f"cluster {cluster.name!r} has {cluster.num_ranks} ranks but "
                                        f"the plan has {parts} parts")
