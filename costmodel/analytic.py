"""Closed-form epoch time for (plan statistics, model, bits, schedule, cluster, profile).

The epoch is a sequence of per-rank compute *segments* separated by the exchanges, which are
all-to-all and therefore synchronise the ranks: a segment lasts as long as its slowest rank.
With overlap, each exchange runs beside the ranks' central aggregation (slowed by the profile's
measured interference factor), so it contributes max(exchange, slowest central). The gradient
all-reduce and the optimiser step close the epoch. Every duration comes from
:mod:`adaqp.costmodel.durations` and :mod:`adaqp.costmodel.network`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from adaqp.cluster import ClusterSpec
from adaqp.costmodel import durations as D
from adaqp.costmodel.network import allreduce_s, exchange_s
from adaqp.costmodel.profile import HardwareProfile
from adaqp.costmodel.workload import PlanStats, exchanges
from adaqp.errors import require
from adaqp.schedule import Schedule

PHASES = ("quantize", "dequantize", "central", "marginal", "dense", "elementwise")


@dataclass(frozen=True)
class ModelShape:
    model: str  # gcn | sage
    widths: tuple[int, ...]  # input width of every layer, then the output width
    layer_norm: bool = True
    dropout: bool = True

    def __post_init__(self) -> None:
        require(self.model in ("gcn", "sage"), f"model must be gcn or sage, got {self.model!r}")
        require(len(self.widths) >= 2, "widths needs at least input and output")

    @property
    def layers(self) -> int:
        return len(self.widths) - 1

    @property
    def num_params(self) -> int:
        w, n = self.widths, 0
        for i in range(self.layers):
            n += (2 if self.model == "sage" else 1) * w[i] * w[i + 1] + w[i + 1]
            if self.layer_norm and i < self.layers - 1:
                n += 2 * w[i + 1]
        return n


@dataclass
class _Rank:
    """Per-rank phase totals (arrays over ranks) accumulated while walking the epoch."""

    P: int
    phases: dict = field(default_factory=dict)

    def add(self, phase: str, t) -> np.ndarray:
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), (self.P,))
        self.phases[phase] = self.phases.get(phase, 0.0) + t
        return t


@dataclass(frozen=True)
class Estimate:
    epoch_time_s: float
    comm_time_s: float  # all exchanges + all-reduce, as if nothing hid them
    exposed_comm_s: float  # what of it lies on the critical path
    compute_time_s: float  # the rest of the critical path
    allreduce_s: float
    phases_s: dict  # slowest rank's total per compute phase
    exchanges: list  # (layer, direction, seconds, bottleneck)

    def summary(self) -> dict:
        return {"epoch_time_s": self.epoch_time_s, "comm_time_s": self.comm_time_s,
                "compute_time_s": self.compute_time_s, "exposed_comm_s": self.exposed_comm_s,
                "allreduce_s": self.allreduce_s, "phases_s": self.phases_s,
                "exchanges": [{"layer": a, "direction": b, "seconds": c, "bottleneck": d}
                              for a, b, c, d in self.exchanges]}


def estimate(stats: PlanStats, shape: ModelShape, schedule: Schedule | str, cluster: ClusterSpec,
             profile: HardwareProfile, bits=32) -> Estimate:
    """``bits``: a uniform width (used when the schedule quantizes) or a BitPlan."""
    sched = Schedule.parse(schedule)
    bits = bits if sched.quantize else 32
    p, P, gcn = profile, stats.num_parts, shape.model == "gcn"
    acc = _Rank(P)
    ex = {(e.layer, e.direction): e for e in exchanges(stats, list(shape.widths[:-1]), bits)}
    segments: list = []  # ("compute", [P] array) | ("exchange", seconds, overlapped [P] or None)
    seg = np.zeros(P)
    nmul = 2 if shape.model == "sage" else 1
    self_loops = lambda n: n if gcn else 0  # noqa: E731  (GCN aggregates a self loop per node)

    def exchange(key, overlapped):
        nonlocal seg
        e = ex[key]
        x, bottleneck = exchange_s(cluster, p, e.nbytes)
        segments.append(("compute", seg))
        segments.append(("exchange", x, overlapped, key, bottleneck))
        seg = np.zeros(P)

    for layer in range(shape.layers):  # ---- forward
        w, w2 = shape.widths[layer], shape.widths[layer + 1]
        e = ex[(layer, "fwd")]
        if shape.dropout:
            seg = seg + acc.add("elementwise", D.elementwise_s(p, "dropout", stats.inner * w))
        seg = seg + acc.add("quantize", D.encode_mixed_s(p, e.send_rows, w))
        central = acc.add("central", D.spmm_s(p, stats.central, stats.nnz_central + self_loops(stats.central), w))
        exchange((layer, "fwd"), central * p.interference if sched.overlap else None)
        seg = seg + acc.add("dequantize", D.encode_mixed_s(p, e.recv_rows, w, decode=True))
        if not sched.overlap:
            seg = seg + central
        seg = seg + acc.add("marginal", D.spmm_s(p, stats.marginal, stats.nnz_marginal + self_loops(stats.marginal), w))
        seg = seg + acc.add("dense", nmul * D.gemm_s(p, stats.inner, w, w2))
        if layer < shape.layers - 1:
            norm = D.elementwise_s(p, "layernorm", stats.inner * w2) if shape.layer_norm else 0.0
            seg = seg + acc.add("elementwise", norm + D.elementwise_s(p, "relu", stats.inner * w2))
    for layer in reversed(range(shape.layers)):  # ---- backward
        w, w2 = shape.widths[layer], shape.widths[layer + 1]
        seg = seg + acc.add("dense", nmul * D.gemm_s(p, stats.inner, w, w2, backward=True))
        if layer < shape.layers - 1:
            norm = D.elementwise_s(p, "layernorm", stats.inner * w2) if shape.layer_norm else 0.0
            seg = seg + acc.add("elementwise", norm + D.elementwise_s(p, "relu", stats.inner * w2))
        if layer == 0:  # the input needs no gradient: no aggregation backward, no exchange
            break
        e = ex[(layer, "bwd")]
        seg = seg + acc.add("marginal", D.spmm_s(p, stats.halo, stats.nnz_marginal_halo, w, backward=True))
        seg = seg + acc.add("quantize", D.encode_mixed_s(p, e.send_rows, w))
        local_nnz = stats.nnz_central + stats.nnz_marginal - stats.nnz_marginal_halo + self_loops(stats.inner)
        inner_bwd = acc.add("central", D.spmm_s(p, stats.inner, local_nnz, w, backward=True))
        exchange((layer, "bwd"), inner_bwd * p.interference if sched.overlap else None)
        seg = seg + acc.add("dequantize", D.encode_mixed_s(p, e.recv_rows, w, decode=True))
        seg = seg + acc.add("marginal", D.elementwise_s(p, "copy", stats.pair_rows.sum(1) * w))  # index_add
        if not sched.overlap:
            seg = seg + inner_bwd
        if shape.dropout:  # backward of the dropout applied to this layer's input
            seg = seg + acc.add("elementwise", D.elementwise_s(p, "dropout", stats.inner * w))
    segments.append(("compute", seg))
    ar = allreduce_s(cluster, p, 4.0 * shape.num_params)
    opt = float(D.elementwise_s(p, "adam", shape.num_params))
    return _evaluate(segments, ar, opt, acc)


def _evaluate(segments, ar: float, opt: float, acc: _Rank) -> Estimate:
    total = comm = exposed = 0.0
    exch = []
    for s in segments:
        if s[0] == "compute":
            total += float(s[1].max())
            continue
        _, x, overlapped, (layer, direction), bottleneck = s
        hidden = float(overlapped.max()) if overlapped is not None else 0.0
        span = max(x, hidden)
        total += span
        comm += x
        exposed += span - hidden
        exch.append((layer, direction, x, bottleneck))
    total += ar + opt
    phases = {k: float(np.max(v)) for k, v in acc.phases.items()}
    return Estimate(total, comm + ar, exposed + ar, total - exposed - ar, ar, phases, exch)
