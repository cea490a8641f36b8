"""GAT layer (Velickovic et al. 2018): multi-head attention with an edge softmax.

Per head k: ``e_ij = LeakyReLU_0.2(a_l . W h_i + a_r . W h_j)`` for every in-neighbour j of i and
i itself (a self loop), ``alpha_ij = softmax_j(e_ij)``, ``h'_i = sum_j alpha_ij W h_j``. Hidden
layers concatenate their heads, the last layer averages them; the bias is added after.

The layer owns only its dense parameters. Where the neighbours come from (this process's whole
graph, or inner + halo rows of one rank) is the *site*'s business (:mod:`adaqp.runtime.attention`):
it calls :meth:`project` on the rows it has and :meth:`attend` on blocks of edges.
"""

from __future__ import annotations

import math

import torch
from torch import nn

NEGATIVE_SLOPE = 0.2  # the GAT paper's LeakyReLU slope


class GATLayer(nn.Module):
    attention = True  # the model passes an attention site, not an aggregation function

    def __init__(self, in_dim: int, head_dim: int, heads: int, concat: bool, attn_dropout: float = 0.0) -> None:
        super().__init__()
        self.heads, self.head_dim, self.concat, self.attn_dropout = heads, head_dim, concat, attn_dropout
        self.lin = nn.Linear(in_dim, heads * head_dim, bias=False)
        self.att_dst = nn.Parameter(torch.empty(heads, head_dim))  # a_l: the destination's half
        self.att_src = nn.Parameter(torch.empty(heads, head_dim))  # a_r: the neighbour's half
        self.bias = nn.Parameter(torch.zeros(heads * head_dim if concat else head_dim))
        # Glorot initialisation, as the paper's reference code
        nn.init.xavier_uniform_(self.lin.weight)
        bound = math.sqrt(6.0 / (heads + head_dim))
        nn.init.uniform_(self.att_dst, -bound, bound)
        nn.init.uniform_(self.att_src, -bound, bound)

    @classmethod
    def from_config(cls, cfg, in_dim: int, out_dim: int, last: bool) -> "GATLayer":
        """``out_dim`` is the layer's output width: ``heads x hidden`` (concatenated) for a hidden
        layer, the class count (``out_heads`` heads of that width, averaged) for the last."""
        if last:
            return cls(in_dim, out_dim, cfg.out_heads, concat=False, attn_dropout=cfg.attn_dropout)
        assert out_dim == cfg.heads * cfg.hidden, (out_dim, cfg.heads, cfg.hidden)
        return cls(in_dim, cfg.hidden, cfg.heads, concat=True, attn_dropout=cfg.attn_dropout)

    def forward(self, h: torch.Tensor, site) -> torch.Tensor:
        out = site(h, self)  # [rows, heads, head_dim]
        out = out.reshape(out.shape[0], -1) if self.concat else out.mean(1)
        return out + self.bias

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``W x`` per head: ``[n, H, C]`` (the dense transform, timed as "dense")."""
        return self.lin(x).view(-1, self.heads, self.head_dim)

    def logits(self, wh: torch.Tensor, destinations: bool = True):
        """``(a_l . W x, a_r . W x)``, each ``[n, H]``; the first is None for rows that are only
        neighbours (halo rows), never destinations."""
        e_dst = (wh * self.att_dst).sum(-1) if destinations else None
        return e_dst, (wh * self.att_src).sum(-1)

    def attend(self, block, wh_src: torch.Tensor, e_src: torch.Tensor, e_dst: torch.Tensor) -> torch.Tensor:
        """Attention output ``[block.rows, H, C]`` of a block of destination rows over its edges
        ``src -> dst`` (``dst`` in ``0..rows-1``, every row with its self loop among them)."""
        from adaqp.runtime.attention import edge_attention

        return edge_attention(block, wh_src, e_src, e_dst, NEGATIVE_SLOPE,
                              self.attn_dropout if self.training else 0.0)
