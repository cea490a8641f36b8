"""Attention over edge blocks (GAT's edge softmax), and where a GAT layer finds its neighbours.

A *site* is what a GAT layer calls with its input rows: ``site(h, layer) -> [rows, H, C]``.
:func:`attention_site` picks it from the aggregation the model was given: a rank's
:class:`~adaqp.runtime.aggregate.RankContext` (halo exchange, :mod:`adaqp.runtime.attention_halo`)
or the single-process :class:`~adaqp.runtime.reference.FullGraphAggregator`. Edge blocks are
built once per aggregation object and kept while it lives.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from adaqp.errors import AdaqpInputError, require


@dataclass(frozen=True, eq=False)
class EdgeBlock:
    """The edges ``src -> dst`` into ``rows`` destination rows, self loops included, sorted by
    destination. ``dst`` counts from the block's first row; ``src`` indexes the source rows the
    caller passes (inner rows, or inner then halo rows)."""

    dst: torch.Tensor  # [E] int64
    src: torch.Tensor  # [E] int64
    rows: int

    @property
    def nnz(self) -> int:
        return int(self.dst.shape[0])

    @classmethod
    def from_csr(cls, indptr: np.ndarray, indices: np.ndarray, loop_src: np.ndarray,
                 device: torch.device | str) -> "EdgeBlock":
        """A destination-indexed CSR plus one self loop per row, ``row i <- loop_src[i]``."""
        rows = int(indptr.shape[0] - 1)
        dst = np.concatenate([np.repeat(np.arange(rows, dtype=np.int64), np.diff(indptr)),
                              np.arange(rows, dtype=np.int64)])
        src = np.concatenate([np.asarray(indices, np.int64), np.asarray(loop_src, np.int64)])
        order = np.argsort(dst, kind="stable")  # rows contiguous: index_add walks memory in order
        as_t = lambda a: torch.as_tensor(a[order], dtype=torch.int64, device=device)  # noqa: E731
        return cls(as_t(dst), as_t(src), rows)


def edge_attention(block: EdgeBlock, wh_src: torch.Tensor, e_src: torch.Tensor, e_dst: torch.Tensor,
                   negative_slope: float, attn_dropout: float) -> torch.Tensor:
    """``out[i] = sum_j softmax_j(LeakyReLU(e_dst[i] + e_src[j])) wh_src[j]`` per head over the
    block's edges: ``wh_src [S, H, C]``, ``e_src [S, H]``, ``e_dst [rows, H]`` -> ``[rows, H, C]``.

    Vectorised over edges and heads (gathers and index_adds, no loop over edges). Every row
    has its self loop, so every softmax has at least one term."""
    from adaqp.runtime.model import dropout

    dst, src, rows = block.dst, block.src, block.rows
    heads, width = wh_src.shape[1], wh_src.shape[2]
    score = F.leaky_relu(e_dst.index_select(0, dst) + e_src.index_select(0, src), negative_slope)
    # The softmax does not change when a row's scores shift by a constant: subtracting the row's
    # maximum keeps exp() finite, and as a constant (no gradient) it leaves the gradient exact.
    with torch.no_grad():
        peak = score.new_full((rows, heads), float("-inf")).scatter_reduce_(
            0, dst.unsqueeze(1).expand_as(score), score, "amax")
    p = torch.exp(score - peak.index_select(0, dst))
    total = p.new_zeros(rows, heads).index_add(0, dst, p)
    alpha = p / total.index_select(0, dst)
    alpha = dropout(alpha, attn_dropout, attn_dropout > 0)
    msg = wh_src.index_select(0, src) * alpha.unsqueeze(-1)  # [E, H, C]
    return msg.new_zeros(rows, heads, width).index_add(0, dst, msg)


class FullGraphSite:
    """Every node of the graph is a destination and a source: one block, no exchange."""

    def __init__(self, graph, device) -> None:
        self.block = EdgeBlock.from_csr(graph.indptr, graph.indices, np.arange(graph.num_nodes), device)

    def __call__(self, h: torch.Tensor, layer) -> torch.Tensor:
        wh = layer.project(h)
        e_dst, e_src = layer.logits(wh)
        return layer.attend(self.block, wh, e_src, e_dst)


_BLOCKS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def attention_site(aggregate, layer: int):
    """The site of layer ``layer`` for the aggregation ``aggregate`` the model was called with
    (a RankContext's bound ``aggregate`` method, or a FullGraphAggregator)."""
    from adaqp.runtime.aggregate import RankContext
    from adaqp.runtime.attention_halo import HaloAttentionSite, RankBlocks
    from adaqp.runtime.reference import FullGraphAggregator

    owner = getattr(aggregate, "__self__", aggregate)
    if isinstance(owner, RankContext):
        # a stale schedule aggregates last epoch's halo rows; this site exchanges fresh ones
        require(getattr(owner, "stale", None) is None, "gat does not run under a stale schedule (pipegcn)")
        if owner not in _BLOCKS:
            _BLOCKS[owner] = RankBlocks(owner.halo, owner.device)
        return HaloAttentionSite(owner, _BLOCKS[owner], layer)
    if isinstance(owner, FullGraphAggregator):
        if owner not in _BLOCKS:
            _BLOCKS[owner] = FullGraphSite(owner.graph, owner.device)
        return _BLOCKS[owner]
    raise AdaqpInputError(f"attention layers need a RankContext or a FullGraphAggregator to find "
                          f"their neighbours, not {type(owner).__name__}")
