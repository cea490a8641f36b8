"""GAT on one rank: the halo exchange of the layer input as autograd functions, and the attention
over central and marginal nodes around it.

Ranks exchange layer *inputs*, as for GCN/SAGE, so the exchanger's channels, BitPlans and
quantized messages are unchanged; every rank then computes ``W h`` for its inner and its halo
rows and the attention over its inner nodes' in-edges locally.

Forward: launch the exchange of this layer's input rows; with overlap, project the inner rows and
compute the central nodes' attention (they need no halo row) while the messages are in flight;
then wait, project the halo rows and compute the marginal nodes' attention over [inner; halo].

Backward mirrors :class:`~adaqp.runtime.aggregate.HaloAggregate.backward`, split over two
autograd nodes because the attention between them is ordinary autograd work:
:class:`HaloRows` (forward: the received halo rows) gets the halo rows' gradients once the
marginal attention's backward has produced them and sends them to their owners; with overlap
it returns at once, so the central attention's backward runs while they are in flight.
:class:`HaloGate` (forward: identity on the layer input, before every use of it) runs last,
when every local gradient of the input is summed, and index_adds the received gradients into
the rows this rank sent. The input layer needs no gradient (``need_remote = layer > 0``).
"""

from __future__ import annotations

import numpy as np
import torch

from adaqp.halo import RankHalo
from adaqp.runtime.attention import EdgeBlock


class RankBlocks:
    """A rank's two edge blocks: central rows (local ``0..nc-1``, sources inner rows) and
    marginal rows (local ``nc..ni-1``, sources inner then halo rows), with their self loops."""

    def __init__(self, halo: RankHalo, device: torch.device) -> None:
        nc, nm = halo.num_central, halo.num_marginal
        self.num_central = nc
        self.central = EdgeBlock.from_csr(halo.central.indptr, halo.central.indices,
                                          np.arange(nc), device)
        self.marginal = EdgeBlock.from_csr(halo.marginal.indptr, halo.marginal.indices,
                                           nc + np.arange(nm), device)


class _Inflight:
    """The backward exchange of one layer, handed from :class:`HaloRows` to :class:`HaloGate`:
    still in flight (``pending``, with overlap) or already received (``received``)."""

    def __init__(self) -> None:
        self.pending = None
        self.received: torch.Tensor | None = None


class HaloGate(torch.autograd.Function):
    """Identity on the layer input; its backward adds the gradients the peers sent back."""

    @staticmethod
    def forward(ctx, h, rctx, inflight: _Inflight):
        ctx.rctx, ctx.inflight = rctx, inflight
        return h.view_as(h)

    @staticmethod
    def backward(ctx, dh):
        inf, ex, timer = ctx.inflight, ctx.rctx.exchanger, ctx.rctx.timer
        if inf.pending is not None:
            inf.received, inf.pending = ex.finish(inf.pending), None
        if inf.received is not None:
            with timer.phase("marginal"):
                dh = dh.index_add(0, ex.send_index, inf.received)
            inf.received = None
        return dh, None, None


class HaloRows(torch.autograd.Function):
    """``halo(h)``: finishes the exchange ``pending`` started on ``h`` and returns the halo rows;
    backward sends their gradients to their owners (see the module docstring)."""

    @staticmethod
    def forward(ctx, h, layer: int, rctx, pending, inflight: _Inflight):
        ctx.layer, ctx.rctx, ctx.inflight = layer, rctx, inflight
        return rctx.exchanger.finish(pending)

    @staticmethod
    def backward(ctx, d_halo):
        ex, overlap = ctx.rctx.exchanger, ctx.rctx.overlap
        need_remote = ctx.layer > 0  # the input layer's halo rows need no gradient
        if need_remote:
            pending = ex.start(ctx.layer, "bwd", d_halo.contiguous(), async_op=overlap)
            if overlap:  # HaloGate waits for it, after the central backward
                ctx.inflight.pending = pending
            else:
                ctx.inflight.received = ex.finish(pending)
        # the received gradients are added by HaloGate, into the same input's gradient
        return None, None, None, None, None


class HaloAttentionSite:
    """Layer ``layer``'s attention on one rank: ``site(h, gat_layer) -> [num_inner, H, C]``."""

    def __init__(self, rctx, blocks: RankBlocks, layer: int) -> None:
        self.rctx, self.blocks, self.layer = rctx, blocks, layer

    def __call__(self, h: torch.Tensor, gat) -> torch.Tensor:
        rctx, b = self.rctx, self.blocks
        ex, timer, overlap = rctx.exchanger, rctx.timer, rctx.overlap
        inflight = _Inflight()
        h = HaloGate.apply(h, rctx, inflight)
        pending = ex.start(self.layer, "fwd", h.detach(), async_op=overlap)
        if overlap:
            inner = self._central(h, gat)
        halo = HaloRows.apply(h, self.layer, rctx, pending, inflight)
        if not overlap:
            inner = self._central(h, gat)
        wh, e_dst, e_src, out_c = inner
        wh_halo = gat.project(halo)
        with timer.phase("marginal"):
            _, e_src_halo = gat.logits(wh_halo, destinations=False)
            out_m = gat.attend(b.marginal, torch.cat([wh, wh_halo]), torch.cat([e_src, e_src_halo]),
                               e_dst[b.num_central:])
            return torch.cat([out_c, out_m])

    def _central(self, h: torch.Tensor, gat):
        """Project the inner rows (every inner row is a source; the marginal ones are also
        destinations later) and attend over the central block, which reads inner rows only."""
        wh = gat.project(h)
        with self.rctx.timer.phase("central"):
            e_dst, e_src = gat.logits(wh)
            out_c = gat.attend(self.blocks.central, wh, e_src, e_dst[:self.blocks.num_central])
        return wh, e_dst, e_src, out_c
