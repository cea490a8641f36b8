"""Small graph builders shared by several test files (importable: tests/conftest.py puts
tests/ on sys.path)."""

import numpy as np

from adaqp.graph import Graph


def random_graph(n=80, m=320, seed=0, directed=True, name="g", feat=4):
    """Random graph with isolated nodes and node 0 fed only by the last (remote) nodes."""
    rng = np.random.default_rng(seed)
    src, dst = rng.integers(0, n, m), rng.integers(0, n, m)
    isolated = np.array([n // 2, n // 2 + 1])
    keep = ~np.isin(src, isolated) & ~np.isin(dst, isolated) & (dst != 0)
    src = np.concatenate([src[keep], [n - 1, n - 2]])
    dst = np.concatenate([dst[keep], [0, 0]])
    x = rng.standard_normal((n, feat)).astype(np.float32)
    mask = np.zeros(n, dtype=bool)
    return Graph.from_edge_index(name, np.stack([src, dst]), x, np.zeros(n, dtype=np.int64),
                                 mask, mask, mask, make_undirected=not directed)


TINY_SBM = "sbm:nodes=300,classes=3,feat=20,deg=5,seed=1"  # a graph of a fraction of a second


def two_part_workload(spec: str, widths: tuple[int, ...]):
    """``(PlanStats, ModelShape)``: ``spec`` in 2 METIS parts, and a GCN of those layer widths."""
    from adaqp.costmodel.program import ModelShape

    return two_part_stats(spec), ModelShape("gcn", widths)


def two_part_stats(spec: str):
    """``PlanStats`` of the dataset ``spec`` split into 2 METIS parts (balanced by nodes)."""
    from adaqp.costmodel.workload import PlanStats
    from adaqp.data.spec import load_dataset
    from adaqp.halo import build_halo_plan
    from adaqp.partition import partition_graph

    g = load_dataset(spec)
    return PlanStats.from_halo_plan(build_halo_plan(g, partition_graph(g, 2, "metis", 0, "nodes")))
