"""Closed-form epoch time: the program of :mod:`adaqp.costmodel.program`, summed.

What the closed form leaves out, and the simulator plays: ranks sharing a CPU's cores are
slowed by one static factor (``durations.compute_scale``: every rank computing at once) for the
whole epoch, although a rank blocked on a message leaves its share to the others; flows are not
re-divided over time (an exchange lasts as long as its busiest resource); ranks are assumed to
reach every exchange together.

The exchanges are all-to-all and synchronise the ranks, so the compute between two of them
lasts as long as its slowest rank — or slowest *device* where ranks share a GPU (their kernels
serialise; CPU profiles are measured per rank's share of the cores, so CPU ranks do not add up).
With overlap an exchange contributes max(exchange, slowest hidden compute). The gradient
all-reduce closes the epoch. Every duration comes from :mod:`adaqp.costmodel.durations` and
:mod:`adaqp.costmodel.network`, the same functions the simulator uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adaqp.cluster import ClusterSpec
from adaqp.costmodel.network import allreduce_s, exchange_s
from adaqp.costmodel.profile import HardwareProfile
from adaqp.costmodel.program import AllReduce, Compute, Exchange, ModelShape, build_program
from adaqp.costmodel.workload import PlanStats
from adaqp.schedule import Schedule

__all__ = ["ModelShape", "Estimate", "estimate", "device_max"]


@dataclass(frozen=True)
class Estimate:
    epoch_time_s: float
    comm_time_s: float  # all exchanges + all-reduce, as if nothing hid them
    exposed_comm_s: float  # what of it lies on the critical path
    compute_time_s: float  # the rest of the critical path
    allreduce_s: float
    phases_s: dict  # slowest rank's (device's) total per compute phase
    exchanges: list  # (layer, direction, seconds, bottleneck)

    def summary(self) -> dict:
        return {"epoch_time_s": self.epoch_time_s, "comm_time_s": self.comm_time_s,
                "compute_time_s": self.compute_time_s, "exposed_comm_s": self.exposed_comm_s,
                "allreduce_s": self.allreduce_s, "phases_s": self.phases_s,
                "exchanges": [{"layer": a, "direction": b, "seconds": c, "bottleneck": d}
                              for a, b, c, d in self.exchanges]}


def device_max(cluster: ClusterSpec, per_rank: np.ndarray) -> float:
    """Slowest rank, or slowest GPU when ranks share one (their work serialises)."""
    if cluster.device != "cpu" and cluster.ranks_per_device > 1:
        dev = np.arange(per_rank.shape[0]) // cluster.ranks_per_device
        return float(np.bincount(dev, weights=per_rank).max())
    return float(per_rank.max())


def estimate(stats: PlanStats, shape: ModelShape, schedule: Schedule | str, cluster: ClusterSpec,
             profile: HardwareProfile, bits=32) -> Estimate:
    """``bits``: a uniform width (used when the schedule quantizes) or a BitPlan."""
    from adaqp.costmodel.profile import check_fits

    check_fits(profile, cluster)
    P = stats.num_parts
    total = comm = exposed = ar = 0.0
    seg = np.zeros(P)
    phases: dict[str, np.ndarray] = {}
    exch = []
    from adaqp.costmodel.durations import compute_scale, overlap_interference

    for s in build_program(stats, shape, schedule, profile, bits, compute_scale(cluster, profile),
                           overlap_interference(cluster, profile)):
        if isinstance(s, Compute):
            seg = seg + s.seconds
            phases[s.phase] = phases.get(s.phase, 0.0) + s.seconds
            continue
        gap = device_max(cluster, seg)  # the compute since the last synchronising step
        total += gap
        seg = np.zeros(P)
        if isinstance(s, AllReduce):
            ar = allreduce_s(cluster, profile, s.nbytes, gap)
            total += ar
            continue
        assert isinstance(s, Exchange)
        x, where = exchange_s(cluster, profile, s.traffic.nbytes, gap)
        hidden = device_max(cluster, s.hidden) if s.hidden is not None else 0.0
        if s.hidden is not None:
            phases[s.hidden_phase] = phases.get(s.hidden_phase, 0.0) + s.hidden
        total += max(x, hidden)
        comm += x
        exposed += max(x, hidden) - hidden
        exch.append((s.traffic.layer, s.traffic.direction, x, where))
    total += device_max(cluster, seg)
    per_phase = {k: device_max(cluster, np.broadcast_to(v, (P,))) for k, v in phases.items()}
    return Estimate(total, comm + ar, exposed + ar, total - exposed - ar, ar, per_phase, exch)
