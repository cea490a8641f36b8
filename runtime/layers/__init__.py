"""GNN layers, one per file. A layer owns its dense weights; neighbour aggregation is passed in
as a function, so the same layer runs distributed (halo exchange) and on one process. An
attention layer (``attention = True``) is passed a site instead (:mod:`adaqp.runtime.attention`)."""

from adaqp.runtime.layers.gat import GATLayer
from adaqp.runtime.layers.gcn import GCNLayer
from adaqp.runtime.layers.sage import SAGELayer

LAYERS = {"gcn": GCNLayer, "sage": SAGELayer, "gat": GATLayer}

__all__ = ["GCNLayer", "SAGELayer", "GATLayer", "LAYERS"]
