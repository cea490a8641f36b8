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


def _scipy(c: LocalCSR, values, shape):
    import scipy.sparse as sp

    return sp.csr_matrix((np.asarray(values, np.float32), c.indices, c.indptr), shape=shape)


def _torch(m, device) -> torch.Tensor:
    m = m.tocsr()
    m.sort_indices()
    return _csr(m.indptr, m.indices, m.data.astype(np.float32), m.shape, device)


class LocalGraph:
    """The sparse operators of one rank for one normalisation, forward and transposed.

    GCN's self loops are folded into the matrices (no extra pass over the rows), and the marginal
    matrix is split by columns into its inner and halo parts, so that aggregation never has to
    concatenate [inner rows; halo rows]. Transposes are built once: backward needs A^T as fast
    as forward needs A, and the halo part first (its gradients must be sent)."""

    def __init__(self, halo: RankHalo, norm: str, device: torch.device) -> None:
        import scipy.sparse as sp

        assert norm in NORMS
        ni, nl, nc, nm = halo.num_inner, halo.num_local, halo.num_central, halo.num_marginal
        self.num_inner, self.num_central = ni, nc
        w = (lambda c: c.w_gcn) if norm == "gcn" else (lambda c: c.w_sage)
        central = _scipy(halo.central, w(halo.central), (nc, ni))
        marginal = _scipy(halo.marginal, w(halo.marginal), (nm, nl))
        if norm == "gcn":  # self loops: central i is local i, marginal j is local nc + j
            sw = np.asarray(halo.self_weight_gcn, np.float32)
            central = central + sp.csr_matrix((sw[:nc], (np.arange(nc), np.arange(nc))), shape=(nc, ni))
            marginal = marginal + sp.csr_matrix((sw[nc:], (np.arange(nm), nc + np.arange(nm))), shape=(nm, nl))
        m_inner, m_halo = marginal[:, :ni], marginal[:, ni:]
        self.central, self.central_t = _torch(central, device), _torch(central.T, device)
        self.marginal_inner, self.marginal_inner_t = _torch(m_inner, device), _torch(m_inner.T, device)
        self.marginal_halo, self.marginal_halo_t = _torch(m_halo, device), _torch(m_halo.T, device)


def _spmm(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if a.shape[0] == 0 or a.shape[1] == 0:
        return x.new_zeros(a.shape[0], x.shape[1])
    return a @ x  # (CSR @ dense: ~3x faster than torch.sparse.mm on CPU here)


class HaloAggregate(torch.autograd.Function):
    """``z = A_local [h; halo(h)]`` for this rank's inner nodes (plus GCN's self term)."""

    @staticmethod
    def forward(ctx, h, layer: int, ctxobj: "RankContext", g: LocalGraph):
        ctx.layer, ctx.ctxobj, ctx.g = layer, ctxobj, g
        return forward_fresh(h, layer, ctxobj, g)[0]

    @staticmethod
    def backward(ctx, dz):
        return backward_fresh(dz, ctx.layer, ctx.ctxobj, ctx.g)[0], None, None, None


def forward_fresh(h, layer: int, ctxobj: "RankContext", g: LocalGraph) -> tuple[torch.Tensor, torch.Tensor]:
    """This epoch's exchange, waited for here: the aggregated rows and the halo rows received."""
    ex, timer, overlap = ctxobj.exchanger, ctxobj.timer, ctxobj.overlap
    pending = ex.start(layer, "fwd", h.detach(), async_op=overlap)
    if overlap:
        with timer.phase("central"):
            z_c = _spmm(g.central, h)
    halo = ex.finish(pending)
    if not overlap:
        with timer.phase("central"):
            z_c = _spmm(g.central, h)
    return aggregate_marginal(g, h, halo, z_c, timer), halo


def aggregate_marginal(g: LocalGraph, h, halo, z_c, timer) -> torch.Tensor:
    with timer.phase("marginal"):
        z_m = _spmm(g.marginal_inner, h) + _spmm(g.marginal_halo, halo)
        return torch.cat([z_c, z_m])


def backward_fresh(dz, layer: int, ctxobj: "RankContext", g: LocalGraph):
    """The gradient of the layer input, with this epoch's halo gradients waited for here; and
    those received gradients (None at the input layer, whose halo rows need no gradient)."""
    ex, timer, overlap = ctxobj.exchanger, ctxobj.timer, ctxobj.overlap
    dz = dz.contiguous()
    dz_m = dz[g.num_central:]
    need_remote = layer > 0  # the input layer's halo rows need no gradient
    with timer.phase("marginal"):
        d_halo = _spmm(g.marginal_halo_t, dz_m)
    pending = ex.start(layer, "bwd", d_halo, async_op=overlap) if need_remote else None
    back = None
    if overlap or pending is None:
        d = local_grad(g, dz, timer)
    if pending is not None:
        back = ex.finish(pending)
        if not overlap:
            d = local_grad(g, dz, timer)
        with timer.phase("marginal"):
            d = d.index_add(0, ex.send_index, back)
    return d, back


def local_grad(g: LocalGraph, dz, timer) -> torch.Tensor:
    """The part of the input gradient that stays on this rank (transposed central + marginal-inner)."""
    dz_c, dz_m = dz[:g.num_central], dz[g.num_central:]
    with timer.phase("central"):
        return _spmm(g.central_t, dz_c) + _spmm(g.marginal_inner_t, dz_m)


class RankContext:
    """What every layer of one rank shares: its exchanger, timer and schedule; with ``stale``
    (PipeGCN), the previous epoch's halo rows and gradients per (layer, direction)."""

    def __init__(self, halo: RankHalo, exchanger, timer, overlap: bool, device: torch.device,
                 stale: bool = False) -> None:
        from adaqp.runtime.stale import StaleHalo

        self.halo, self.exchanger, self.timer, self.overlap = halo, exchanger, timer, overlap
        self._graphs: dict[str, LocalGraph] = {}
        self.device = device
        self.stale = StaleHalo(exchanger, device) if stale else None

    def graph(self, norm: str) -> LocalGraph:
        if norm not in self._graphs:
            self._graphs[norm] = LocalGraph(self.halo, norm, self.device)
        return self._graphs[norm]

    def aggregate(self, layer: int, h: torch.Tensor, norm: str) -> torch.Tensor:
        if self.stale is not None:
            from adaqp.runtime.stale import StaleAggregate

            return StaleAggregate.apply(h, layer, self, self.graph(norm))
        return HaloAggregate.apply(h, layer, self, self.graph(norm))


# Public names of the two kernels every aggregation runs: the micro-benchmarks
# (adaqp.runtime.profiling) time exactly these.
csr_tensor = _csr
spmm = _spmm
