"""Single-process, full-graph aggregation: the ground truth the distributed run must equal.

Built straight from the :class:`~adaqp.graph.Graph` (not from a HaloPlan), so an error in the
halo plan or the exchange cannot hide in both sides of a comparison.
"""

from __future__ import annotations

import numpy as np
import torch

from adaqp.graph import Graph


class FullGraphAggregator:
    def __init__(self, graph: Graph, device: torch.device | str = "cpu") -> None:
        n = graph.num_nodes
        self.graph, self.device = graph, device  # attention layers build their edges from it
        deg = graph.in_degree.astype(np.float64)
        dst = np.repeat(np.arange(n), graph.in_degree)
        src = graph.indices
        # GCN: D^-1/2 (A + I) D^-1/2 with D = in-degree + 1 (the self loop)
        w_gcn = 1.0 / np.sqrt((deg[src] + 1.0) * (deg[dst] + 1.0))
        loops = np.arange(n)
        rows = np.concatenate([dst, loops])
        cols = np.concatenate([src, loops])
        vals = np.concatenate([w_gcn, 1.0 / (deg + 1.0)])
        self.ops = {
            "gcn": self._coo(rows, cols, vals, n, device),
            "sage": self._coo(dst, src, 1.0 / deg[dst], n, device),
        }

    @staticmethod
    def _coo(rows, cols, vals, n, device) -> torch.Tensor:
        idx = torch.as_tensor(np.stack([rows, cols]), dtype=torch.int64)
        a = torch.sparse_coo_tensor(idx, torch.as_tensor(vals, dtype=torch.float32), (n, n),
                                    check_invariants=False)
        return a.coalesce().to(device)

    def __call__(self, layer: int, h: torch.Tensor, norm: str) -> torch.Tensor:
        return torch.sparse.mm(self.ops[norm], h)
