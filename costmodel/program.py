"""The epoch as a program of per-rank steps: what the analytic model sums and the simulator plays.

Steps, in order, for every rank at once (durations are ``[P]`` arrays from
:mod:`adaqp.costmodel.durations`):

- ``Compute(phase, seconds)`` — work on the rank's compute stream;
- ``Exchange(exchange, hidden)`` — an all-to-all of ``exchange.nbytes``; with overlap,
  ``hidden`` is the compute (phase ``central``) the rank runs on its second stream meanwhile;
- ``AllReduce(nbytes)`` — the gradient all-reduce.

A stale schedule (``pipegcn``) waits at every exchange for the one launched a whole epoch
earlier, so its steady-state epoch is one ``Exchange`` of all the epoch's bytes with the forward
and backward compute beside it (``hidden_phase`` "pipelined"), then the all-reduce and the
optimizer (:func:`pipelined`; docs/schedules.md).

Order and operations follow the runtime (:mod:`adaqp.runtime.aggregate`): forward per layer
dropout, encode, [exchange | central], decode, (central), marginal (its inner and halo SpMMs,
their sum, the concatenation with the central rows), dense, norm+relu; backward per layer dense
and norm+relu, the halo part of the transposed aggregation, encode, [exchange | inner part: the
transposed central and marginal-inner SpMMs and their sum], decode, index_add, (inner part),
dropout; the input layer has no aggregation backward and no exchange. Element-wise passes that
have no op of their own (a sum of two tensors, a concatenation) cost one ``relu``: one
allocating pass over the same rows. GAT replaces the aggregation and the dense transform by
the attention's ops (:mod:`adaqp.costmodel.gat_ops`), in the same places: its input layer
still runs the attention backward (its weights need it), without an exchange.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adaqp.costmodel import durations as D
from adaqp.costmodel.gat_ops import GATOps, gat_num_params
from adaqp.costmodel.profile import HardwareProfile
from adaqp.costmodel.workload import Exchange as Traffic
from adaqp.costmodel.workload import PlanStats, exchanges
from adaqp.errors import require
from adaqp.schedule import Schedule


@dataclass(frozen=True)
class ModelShape:
    model: str  # gcn | sage | gat
    widths: tuple[int, ...]  # input width of every layer, then the output width
    layer_norm: bool = True
    dropout: bool = True
    heads: int = 1  # gat: hidden layers' heads (their output width is heads x hidden)
    out_heads: int = 1  # gat: the last layer's heads, averaged
    attn_dropout: bool = False  # gat: dropout on the attention coefficients

    def __post_init__(self) -> None:
        require(self.model in ("gcn", "sage", "gat"), f"model must be gcn, sage or gat, got {self.model!r}")
        require(len(self.widths) >= 2, "widths needs at least input and output")
        require(self.heads >= 1 and self.out_heads >= 1, "heads must be >= 1")
        require(self.model == "gat" or (self.heads, self.out_heads) == (1, 1), "heads apply to gat only")
        require(all(w % self.heads == 0 for w in self.widths[1:-1]),
                f"gat hidden widths {self.widths[1:-1]} are not multiples of {self.heads} heads")

    @classmethod
    def of(cls, cfg, in_dim: int, out_dim: int) -> "ModelShape":
        """The shape of a runtime ``ModelConfig`` on a graph with these widths (read by its
        fields: the cost model does not import the runtime)."""
        return cls(cfg.model, tuple(cfg.widths(in_dim, out_dim)), cfg.layer_norm, cfg.dropout > 0,
                   cfg.heads, cfg.out_heads, cfg.attn_dropout > 0)

    def gat_heads(self, layer: int) -> tuple[int, int]:
        """(heads, width per head) of GAT layer ``layer``."""
        if layer == self.layers - 1:
            return self.out_heads, self.widths[-1]
        return self.heads, self.widths[layer + 1] // self.heads

    @property
    def layers(self) -> int:
        return len(self.widths) - 1

    @property
    def num_params(self) -> int:
        w = self.widths
        n = gat_num_params(w, self.heads, self.out_heads) if self.model == "gat" else 0
        for i in range(self.layers):
            if self.model != "gat":
                n += (2 if self.model == "sage" else 1) * w[i] * w[i + 1] + w[i + 1]
            if self.layer_norm and i < self.layers - 1:
                n += 2 * w[i + 1]
        return n


@dataclass(frozen=True)
class Compute:
    phase: str
    seconds: np.ndarray  # [P]


@dataclass(frozen=True)
class Exchange:
    traffic: Traffic
    hidden: np.ndarray | None  # [P] compute overlapped with it (already slowed by interference)
    hidden_phase: str = "central"  # what that compute is: central aggregation, or "pipelined"


@dataclass(frozen=True)
class AllReduce:
    nbytes: float


def build_program(stats: PlanStats, shape: ModelShape, schedule: Schedule | str,
                  profile: HardwareProfile, bits=32, compute_scale: float = 1.0,
                  interference: float | None = None) -> list:
    """The steps of one epoch. ``bits``: a uniform width (when the schedule quantizes) or a
    BitPlan; ``compute_scale`` (see :func:`durations.compute_scale`) multiplies every compute step;
    ``interference`` (default: the profile's; see :func:`durations.overlap_interference`) the
    compute hidden under an exchange."""
    interference = profile.interference if interference is None else interference
    sched = Schedule.parse(schedule)
    bits = bits if sched.quantize else 32
    p, P, gcn = profile, stats.num_parts, shape.model == "gcn"
    ex = {(e.layer, e.direction): e for e in exchanges(stats, list(shape.widths[:-1]), bits)}
    prog: list = []
    step = lambda phase, t: prog.append(Compute(phase, np.broadcast_to(np.asarray(t, float) * compute_scale, (P,))))  # noqa: E731
    loops = lambda n: n if gcn else 0  # noqa: E731  (GCN aggregates a self loop per node)
    nmul = 2 if shape.model == "sage" else 1
    marginal_inner_nnz = stats.nnz_marginal - stats.nnz_marginal_halo + loops(stats.marginal)
    gat = GATOps(p, stats, shape) if shape.model == "gat" else None

    stale: list[Traffic] = []

    def exchange(key, overlapped):
        if sched.stale:  # waited for an epoch later: gathered by pipelined() below
            stale.append(ex[key])
            step("central", overlapped)
            return
        t = ex[key]
        # only a rank with bytes in flight computes beside an exchange; one with none (a part with
        # no halo, or a single rank) runs its hidden compute at full speed
        moving = (t.nbytes.sum(0) + t.nbytes.sum(1)) > 0
        slowed = overlapped * compute_scale * np.where(moving, interference, 1.0)
        prog.append(Exchange(t, slowed if sched.overlap else None))
        if not sched.overlap:
            step("central", overlapped)

    def norm_relu(w2):
        norm = D.elementwise_s(p, "layernorm", rows=stats.inner, width=w2) if shape.layer_norm else 0.0
        step("elementwise", norm + D.elementwise_s(p, "relu", rows=stats.inner, width=w2))

    for layer in range(shape.layers):  # ---- forward
        w, w2, e = shape.widths[layer], shape.widths[layer + 1], ex[(layer, "fwd")]
        if shape.dropout:
            step("elementwise", D.elementwise_s(p, "dropout", rows=stats.inner, width=w))
        step("quantize", D.encode_mixed_s(p, e.send_rows, w))
        central = D.spmm_s(p, stats.central, stats.nnz_central + loops(stats.central), w)
        if gat:  # the inner rows' projection and logits, then the central attention
            central = gat.central(layer)
        exchange((layer, "fwd"), np.broadcast_to(np.asarray(central, float), (P,)))
        step("dequantize", D.encode_mixed_s(p, e.recv_rows, w, decode=True))
        # with overlap, central was on the second stream; without, exchange() queued it above.
        # The marginal rows aggregate their inner and their halo columns as two SpMMs, add the
        # parts, and the layer's output concatenates central and marginal rows (two passes).
        step("marginal", gat.marginal(layer) if gat else
             D.spmm_s(p, stats.marginal, marginal_inner_nnz, w)
             + D.spmm_s(p, stats.marginal, stats.nnz_marginal_halo, w)
             + D.elementwise_s(p, "relu", rows=stats.marginal, width=w)
             + D.elementwise_s(p, "relu", rows=stats.inner, width=w))
        step("dense", gat.output(layer) if gat else nmul * D.gemm_s(p, stats.inner, w, w2))
        if layer < shape.layers - 1:
            norm_relu(w2)
    for layer in reversed(range(shape.layers)):  # ---- backward
        w, w2 = shape.widths[layer], shape.widths[layer + 1]
        if layer < shape.layers - 1:
            norm_relu(w2)
        step("dense", gat.output(layer) if gat else
             nmul * D.gemm_s(p, stats.inner, w, w2, backward=True, input_grad=layer > 0))
        if layer == 0:  # the input needs no gradient: no aggregation backward, no exchange
            if gat:  # but GAT's weights get theirs through the attention
                step("marginal", gat.marginal(layer, backward=True))
                step("central", gat.central(layer, backward=True))
            break
        e = ex[(layer, "bwd")]
        step("marginal", gat.marginal(layer, backward=True) if gat else
             D.spmm_s(p, stats.halo, stats.nnz_marginal_halo, w, backward=True))
        step("quantize", D.encode_mixed_s(p, e.send_rows, w))
        # the local gradient: the transposed central and marginal-inner SpMMs, added
        inner = (D.spmm_s(p, stats.inner, stats.nnz_central + loops(stats.central), w, backward=True)
                 + D.spmm_s(p, stats.inner, marginal_inner_nnz, w, backward=True)
                 + D.elementwise_s(p, "relu", rows=stats.inner, width=w))
        if gat:  # the central attention's and the inner projection's backward
            inner = gat.central(layer, backward=True)
        exchange((layer, "bwd"), np.broadcast_to(np.asarray(inner, float), (P,)))
        step("dequantize", D.encode_mixed_s(p, e.recv_rows, w, decode=True))
        # index_add, out of place: a pass over the local gradient, then the received rows added
        step("marginal", D.elementwise_s(p, "relu", rows=stats.inner, width=w)
             + D.elementwise_s(p, "copy", rows=stats.pair_rows.sum(1), width=w))
        if shape.dropout:
            step("elementwise", D.elementwise_s(p, "dropout", rows=stats.inner, width=w))
    if sched.stale:
        prog = [pipelined(prog, stale)]
    prog.append(AllReduce(4.0 * shape.num_params))
    step("optimizer", D.elementwise_s(p, "adam", shape.num_params))
    return prog


def pipelined(compute: list, traffic: list[Traffic]) -> Exchange:
    """A stale schedule's steady-state epoch before its all-reduce, as one step.

    Each exchange launched at epoch t is waited for at the same layer of epoch t + 1: it travels
    under one epoch of compute and is exposed only by how much it exceeds it. All of them share
    the links, so they are one exchange of the epoch's bytes, per ordered pair, beside the
    forward and backward compute: max(exchange, compute).

    The interference factor is not applied. Unlike overlap's central aggregation, which runs only
    while its messages are in flight, this compute has messages beside it for ``x`` of the epoch
    only; slowed by ``i`` during those ``x`` seconds it would take max(x, C + x (1 - 1/i)). So the
    model is exact when the exchange is negligible or exceeds ``i C``, and in between under-states
    the epoch by at most ``x (1 - 1/i)``; applying ``i`` to all of ``C`` would over-state it by up
    to ``(i - 1) C`` (1.4 C on cpu-2core).
    """
    hidden = sum(s.seconds for s in compute)
    P = np.shape(hidden)[0]

    def rows(side: str) -> dict:
        out: dict[int, np.ndarray] = {}
        for t in traffic:
            for b, n in getattr(t, side).items():
                out[b] = out.get(b, np.zeros(P, np.int64)) + n
        return out

    nbytes = sum((t.nbytes for t in traffic), np.zeros((P, P)))
    merged = Traffic(-1, "stale", 0, rows("send_rows"), rows("recv_rows"), nbytes)  # layer -1: all layers
    return Exchange(merged, hidden, hidden_phase="pipelined")
