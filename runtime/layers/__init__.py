"""GNN layers, one per file. A layer owns its dense weights; neighbour aggregation is passed in
as a function, so the same layer runs distributed (halo exchange) and on one process."""

from adaqp.runtime.layers.gcn import GCNLayer
from adaqp.runtime.layers.sage import SAGELayer

LAYERS = {"gcn": GCNLayer, "sage": SAGELayer}

__all__ = ["GCNLayer", "SAGELayer", "LAYERS"]
