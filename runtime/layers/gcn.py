"""GCN layer (Kipf & Welling): ``h' = (D^-1/2 (A + I) D^-1/2 h) W + b``."""

from __future__ import annotations

import torch
from torch import nn


class GCNLayer(nn.Module):
    norm = "gcn"  # which normalisation the aggregation must apply

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(in_dim, out_dim)

    def forward(self, h: torch.Tensor, aggregate) -> torch.Tensor:
        # aggregate first, then transform: the exchange carries the layer's input rows
        return self.lin(aggregate(h, self.norm))
