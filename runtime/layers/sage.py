"""GraphSAGE layer with mean aggregation: ``h'_v = W_r h_v + W_n mean_{u->v} h_u + b``."""

from __future__ import annotations

import torch
from torch import nn


class SAGELayer(nn.Module):
    norm = "sage"

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.lin_root = nn.Linear(in_dim, out_dim)
        self.lin_neigh = nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, h: torch.Tensor, aggregate) -> torch.Tensor:
        return self.lin_root(h) + self.lin_neigh(aggregate(h, self.norm))
