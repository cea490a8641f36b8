"""Public graphs known by their counts (``adaqp whatif --like NAME``): sizes from the published
dataset listings, for graphs too big to build here."""

from __future__ import annotations

from dataclasses import dataclass

@dataclass(frozen=True)
class LikeGraph:
    """A public graph by its counts: ``edges`` are directed edges as aggregated (an undirected
    edge counts twice), ``classes`` the output width (labels for multi-label data)."""

    name: str
    nodes: int
    edges: int
    features: int
    classes: int
    source: str


LIKE: dict[str, LikeGraph] = {g.name: g for g in (
    LikeGraph("reddit", 232_965, 114_615_892, 602, 41,
              "DGL RedditDataset (the AdaQP reference's Reddit): 232,965 nodes, 114,615,892 edges, 602 features, 41 classes"),
    LikeGraph("yelp", 716_847, 13_954_819, 300, 100,
              "GraphSAINT Yelp as in DGL/PyG: 716,847 nodes, 13,954,819 directed edges (6,977,410 undirected), "
              "300 features, 100 labels"),
    LikeGraph("ogbn-products", 2_449_029, 123_718_280, 100, 47,
              "OGB ogbn-products: 2,449,029 nodes, 61,859,140 undirected edges = 123,718,280 directed, 100 features, 47 classes"),
    LikeGraph("amazonproducts", 1_598_960, 264_339_468, 200, 107,
              ("GraphSAINT Amazon: 1,598,960 nodes, 132,169,734 undirected edges (264,339,468 directed in PyG), "
               "200 features, 107 labels")),
    LikeGraph("ogbn-papers100M", 111_059_956, 3_231_371_744, 128, 172,
              ("OGB ogbn-papers100M: 111,059,956 nodes, 1,615,685,872 directed citations, made symmetric for "
               "full-graph training (3,231,371,744: an upper bound, reciprocal citations counted twice), "
               "128 features, 172 classes")),
)}


