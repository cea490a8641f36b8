"""Neighbour aggregation on one rank, with the halo exchange inside a custom autograd function.

Forward: launch the exchange of this layer's input rows; with overlap, aggregate the central
nodes (which need no remote row) while the messages are in flight, then wait and aggregate the
marginal nodes over [inner rows; halo rows]. Backward mirrors it: the gradients of the halo rows
are computed first and sent back to their owners; with overlap, the central and inner parts of
the backward run while they are in flight; the received gradients are then added into the rows
this rank sent.
"""

from __future__ import annotations

import numpy as np
import torch

from adaqp.halo import LocalCSR, RankHalo

NORMS = ("gcn", "sage")


def _csr(indptr, indices, values, shape, device) -> torch.Tensor:
    import warnings

    with warnings.catch_warnings():  # "CSR support is in beta": we check our own invariants
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.as_tensor(indptr, dtype=torch.int64),
                                       torch.as_tensor(indices, dtype=torch.int64),
                                       torch.as_tensor(values, dtype=torch.float32), size=shape,
                                       check_invariants=False).to(device)


def _transpose_csr(indptr, indices, values, shape, device) -> torch.Tensor:
    """CSR of the transpose, built once (backward needs A^T as fast as forward needs A)."""
    import scipy.sparse as sp

    t = sp.csr_matrix((values, indices, indptr), shape=shape).T.tocsr()
    t.sort_indices()
    return _csr(t.indptr, t.indices, t.data, t.shape, device)


class LocalGraph:
    """The sparse operators of one rank for one normalisation, forward and transposed."""

    def __init__(self, halo: RankHalo, norm: str, device: torch.device) -> None:
        assert norm in NORMS
        ni, nl, nc = halo.num_inner, halo.num_local, halo.num_central
        self.num_inner, self.num_central = ni, nc
        w = lambda c: c.w_gcn if norm == "gcn" else c.w_sage  # noqa: E731
        c, m = halo.central, halo.marginal
        self.central = _csr(c.indptr, c.indices, w(c), (nc, ni), device)
        self.marginal = _csr(m.indptr, m.indices, w(m), (halo.num_marginal, nl), device)
        self.central_t = _transpose_csr(c.indptr, c.indices, w(c), (nc, ni), device)
        # A_m^T split by rows: halo rows first in backward (their gradients must be sent)
        mt = _split_transpose(m, w(m), halo.num_marginal, ni, nl)
        self.marginal_t_inner = _csr(*mt[0], device=device)
        self.marginal_t_halo = _csr(*mt[1], device=device)
        self.self_weight = (torch.as_tensor(halo.self_weight_gcn, dtype=torch.float32, device=device)
                            .unsqueeze(1) if norm == "gcn" else None)


def _split_transpose(m: LocalCSR, values, rows: int, ni: int, nl: int):
    import scipy.sparse as sp

    t = sp.csr_matrix((values, m.indices, m.indptr), shape=(rows, nl)).T.tocsr()
    t.sort_indices()
    parts = []
    for lo, hi in ((0, ni), (ni, nl)):
        s = t[lo:hi]
        parts.append((s.indptr, s.indices, s.data.astype(np.float32), s.shape))
    return parts


def _spmm(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if a.shape[0] == 0 or a.shape[1] == 0:
        return x.new_zeros(a.shape[0], x.shape[1])
    return a @ x  # (CSR @ dense: ~3x faster than torch.sparse.mm on CPU here)


class HaloAggregate(torch.autograd.Function):
    """``z = A_local [h; halo(h)]`` for this rank's inner nodes (plus GCN's self term)."""

    @staticmethod
    def forward(ctx, h, layer: int, ctxobj: "RankContext", g: LocalGraph):
        ex, timer, overlap = ctxobj.exchanger, ctxobj.timer, ctxobj.overlap
        pending = ex.start(layer, "fwd", h.detach(), async_op=overlap)
        if overlap:
            with timer.phase("central"):
                z_c = _spmm(g.central, h)
        halo = ex.finish(pending)
        if not overlap:
            with timer.phase("central"):
                z_c = _spmm(g.central, h)
        with timer.phase("marginal"):
            z_m = _spmm(g.marginal, torch.cat([h, halo]))
            z = torch.cat([z_c, z_m])
            if g.self_weight is not None:
                z = z + g.self_weight * h
        ctx.layer, ctx.ctxobj, ctx.g = layer, ctxobj, g
        return z

    @staticmethod
    def backward(ctx, dz):
        g, ctxobj, layer = ctx.g, ctx.ctxobj, ctx.layer
        ex, timer, overlap = ctxobj.exchanger, ctxobj.timer, ctxobj.overlap
        dz = dz.contiguous()
        dz_c, dz_m = dz[:g.num_central], dz[g.num_central:]
        need_remote = layer > 0  # the input layer's halo rows need no gradient
        with timer.phase("marginal"):
            d_halo = _spmm(g.marginal_t_halo, dz_m)
        pending = ex.start(layer, "bwd", d_halo, async_op=overlap) if need_remote else None

        def local_grad():
            with timer.phase("central"):
                d = _spmm(g.central_t, dz_c)
                d = d + _spmm(g.marginal_t_inner, dz_m)
                if g.self_weight is not None:
                    d = d + g.self_weight * dz
            return d

        if overlap or pending is None:
            d = local_grad()
        if pending is not None:
            back = ex.finish(pending)
            if not overlap:
                d = local_grad()
            with timer.phase("marginal"):
                d = d.index_add(0, ex.send_index, back)
        return d, None, None, None


class RankContext:
    """What every layer of one rank shares: its exchanger, timer and schedule."""

    def __init__(self, halo: RankHalo, exchanger, timer, overlap: bool, device: torch.device) -> None:
        self.halo, self.exchanger, self.timer, self.overlap = halo, exchanger, timer, overlap
        self._graphs: dict[str, LocalGraph] = {}
        self.device = device

    def graph(self, norm: str) -> LocalGraph:
        if norm not in self._graphs:
            self._graphs[norm] = LocalGraph(self.halo, norm, self.device)
        return self._graphs[norm]

    def aggregate(self, layer: int, h: torch.Tensor, norm: str) -> torch.Tensor:
        return HaloAggregate.apply(h, layer, self, self.graph(norm))
