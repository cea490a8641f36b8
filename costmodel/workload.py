"""What one epoch asks of each rank, as counts: the input of the analytic model and the simulator.

``PlanStats`` holds per-rank sizes taken from a HaloPlan (exact) or from partition statistics
(for graphs too large to build). ``Traffic`` gives, per exchange (layer, direction), the rows each
rank codes per bit-width and the bytes of every ordered pair, from a BitPlan or a uniform width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adaqp import wire
from adaqp.errors import require
from adaqp.halo import HaloPlan
from adaqp.plans import BitPlan


@dataclass(frozen=True)
class PlanStats:
    inner: np.ndarray  # [P] inner nodes
    central: np.ndarray  # [P]
    marginal: np.ndarray  # [P]
    halo: np.ndarray  # [P] halo rows received per exchange
    nnz_central: np.ndarray  # [P] edges aggregated into central nodes (no self loops)
    nnz_marginal: np.ndarray  # [P] edges aggregated into marginal nodes
    nnz_marginal_halo: np.ndarray  # [P] of those, edges whose source is a halo row
    pair_rows: np.ndarray  # [P, P] rows s sends r per forward exchange

    @property
    def num_parts(self) -> int:
        return int(self.inner.shape[0])

    @classmethod
    def from_halo_plan(cls, plan: HaloPlan) -> "PlanStats":
        cols = lambda r: [int(getattr(h, r)) for h in plan.ranks]  # noqa: E731
        mh = [int((h.marginal.indices >= h.num_inner).sum()) for h in plan.ranks]
        return cls(np.array(cols("num_inner")), np.array(cols("num_central")), np.array(cols("num_marginal")),
                   np.array(cols("num_halo")), np.array([h.central.nnz for h in plan.ranks]),
                   np.array([h.marginal.nnz for h in plan.ranks]), np.array(mh), plan.pair_rows())


@dataclass(frozen=True)
class Exchange:
    """One exchange: rows each rank encodes / decodes per width, and bytes per ordered pair."""

    layer: int
    direction: str
    width: int
    send_rows: dict[int, np.ndarray]  # bits -> [P]
    recv_rows: dict[int, np.ndarray]  # bits -> [P]
    nbytes: np.ndarray  # [P, P]


def exchanges(stats: PlanStats, widths: list[int], bits: int | BitPlan) -> list[Exchange]:
    """Every exchange of an epoch: forward at each layer, backward at layers 1..L-1."""
    L = len(widths)
    out = []
    for layer in range(L):
        for direction in (("fwd",) if layer == 0 else ("fwd", "bwd")):
            out.append(_exchange(stats, layer, direction, widths[layer], bits))
    return out


def directed_pair_rows(stats: PlanStats, direction: str) -> np.ndarray:
    """Rows per ordered pair ``[sender, receiver]`` of one exchange: the forward plan's, or its
    transpose backward (the halo rows' gradients flow back to their owners)."""
    return stats.pair_rows if direction == "fwd" else stats.pair_rows.T


def _exchange(stats: PlanStats, layer: int, direction: str, width: int, bits) -> Exchange:
    rows = directed_pair_rows(stats, direction)
    if isinstance(bits, BitPlan):
        return _from_bitplan(bits, layer, direction, width, rows.shape[0])
    b = wire.check_bits(bits)
    return Exchange(layer, direction, width, {b: rows.sum(1)}, {b: rows.sum(0)},
                    wire.message_nbytes(rows, width, b).astype(np.float64))


def _from_bitplan(plan: BitPlan, layer: int, direction: str, width: int, P: int) -> Exchange:
    require(plan.num_parts == P, f"BitPlan has {plan.num_parts} parts, the plan {P}")
    send: dict[int, np.ndarray] = {}
    recv: dict[int, np.ndarray] = {}
    nbytes = plan.pair_nbytes(layer, direction, width).astype(np.float64)
    for (lay, d, s, r) in plan.channels():
        if lay != layer or d != direction:
            continue
        widths, counts = np.unique(plan.channel(lay, d, s, r), return_counts=True)
        for b, c in zip(widths.tolist(), counts.tolist()):
            send.setdefault(b, np.zeros(P, np.int64))[s] += c
            recv.setdefault(b, np.zeros(P, np.int64))[r] += c
    return Exchange(layer, direction, width, send, recv, nbytes)
