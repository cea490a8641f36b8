"""Partition: methods, validation, statistics against brute force, persistence."""

import json
from functools import partial

import numpy as np
import pytest
from helpers.graphs import random_graph  # tests/helpers, on sys.path via tests/conftest.py

from adaqp.errors import AdaqpInputError
from adaqp.graph import Graph
from adaqp.partition import (
    METHODS,
    Partition,
    _fill_empty_parts,
    load_partition,
    partition_graph,
    partition_stats,
    save_partition,
    unique_inverse,
)

make_graph = partial(random_graph, n=80, m=320, feat=4, name="g")


def block_graph(blocks=4, size=50, p_in=0.2, p_out=0.004, seed=1):
    """Planted clusters whose ids are interleaved, so id ranges do not reveal them."""
    rng = np.random.default_rng(seed)
    n = blocks * size
    block = np.arange(n) % blocks
    prob = np.where(block[:, None] == block[None, :], p_in, p_out)
    dst, src = np.nonzero(rng.random((n, n)) < prob)
    mask = np.zeros(n, dtype=bool)
    return Graph.from_edge_index("blocks", np.stack([src, dst]), np.zeros((n, 1), np.float32),
                                 block, mask, mask, mask, make_undirected=True)


def brute_stats(graph, parts, p):
    """Loop-over-edges reference for every statistic."""
    edges = graph.edge_index().T.tolist()
    cut = [(u, v) for u, v in edges if parts[u] != parts[v]]
    marginal = {v for _, v in cut}
    sent = {(u, int(parts[v])) for u, v in cut}  # distinct (row, receiving part)
    pair = np.zeros((p, p), dtype=np.int64)
    for u, r in sent:
        pair[parts[u], r] += 1
    inner = np.bincount(parts, minlength=p)
    marg = np.bincount([parts[v] for v in marginal], minlength=p) if marginal else np.zeros(p, int)
    return dict(edge_cut=len(cut), pair_rows=pair, inner=inner, marginal=marg, central=inner - marg,
                halo_in=pair.sum(0), halo_out=pair.sum(1),
                local_edges=np.bincount([parts[v] for u, v in edges if parts[u] == parts[v]], minlength=p),
                cut_edges=np.bincount([parts[v] for _, v in cut], minlength=p),
                replication_factor=(graph.num_nodes + pair.sum()) / graph.num_nodes)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("num_parts", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("directed", [True, False])
def test_stats_match_brute_force(method, num_parts, directed):
    g = make_graph(directed=directed, seed=num_parts)
    part = partition_graph(g, num_parts, method, seed=3)
    assert part.parts.dtype == np.int64 and part.parts.shape == (g.num_nodes,)
    assert np.all(part.part_sizes() > 0) and part.graph_fingerprint == g.fingerprint()
    if method in ("random", "contiguous"):
        assert np.ptp(part.part_sizes()) <= 1
    stats, ref = partition_stats(g, part), brute_stats(g, part.parts, num_parts)
    for key, want in ref.items():
        np.testing.assert_allclose(getattr(stats, key), want, err_msg=key)
    if num_parts == 1:
        assert stats.edge_cut == 0 and stats.replication_factor == 1.0


@pytest.mark.parametrize("method", ["metis", "random"])
def test_seeded_methods_are_deterministic(method):
    g = make_graph(n=120, m=600)
    a, b = partition_graph(g, 3, method, seed=7), partition_graph(g, 3, method, seed=7)
    assert np.array_equal(a.parts, b.parts)


def test_contiguous_is_id_ranges():
    part = partition_graph(make_graph(n=10, m=20), 3, "contiguous")
    assert part.parts.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_metis_cuts_fewer_edges_than_random_on_clusters():
    g = block_graph()
    metis = partition_stats(g, partition_graph(g, 4, "metis")).edge_cut
    rand = partition_stats(g, partition_graph(g, 4, "random")).edge_cut
    assert metis * 3 < rand


def test_metis_edge_balance_is_valid():
    g = block_graph()
    part = partition_graph(g, 4, "metis", balance="edges")
    assert np.all(part.part_sizes() > 0)


# The last case made METIS (5.1, pymetis 2025.2) leave parts empty for 9 parts.
@pytest.mark.parametrize("n,edges", [(5, []), (4, [(0, 1)]), (6, [(0, 1), (1, 2), (2, 0)]),
                                     (10, [(1, 5), (3, 7), (5, 6), (5, 8), (7, 9)])])
def test_metis_never_returns_empty_parts_on_tiny_graphs(n, edges):
    ei = np.array(edges, dtype=np.int64).reshape(-1, 2).T
    mask = np.zeros(n, dtype=bool)
    g = Graph.from_edge_index("tiny", ei, np.zeros((n, 1), np.float32), np.zeros(n, np.int64),
                              mask, mask, mask, make_undirected=True)
    for p in range(1, n + 1):
        assert np.all(partition_graph(g, p, "metis").part_sizes() > 0)


def test_fill_empty_parts_moves_from_largest_part():
    out = _fill_empty_parts(np.array([0, 0, 0, 1, 0]), 4)
    assert sorted(np.bincount(out, minlength=4).tolist()) == [1, 1, 1, 2]
    assert out.tolist() == [0, 0, 3, 1, 2]  # highest ids of the largest part move, in order


@pytest.mark.parametrize("args,match", [
    ((0,), "must be >= 1"), ((81,), "non-empty parts"), ((2, "kmeans"), "unknown partition method"),
    ((2, "metis", 0, "weight"), "unknown balance"), ((2.5,), "must be an integer"),
])
def test_bad_arguments_are_refused(args, match):
    with pytest.raises(AdaqpInputError, match=match):
        partition_graph(make_graph(), *args)


@pytest.mark.parametrize("parts,match", [([0, 0, 2], r"part\(s\) \[1\]"), ([0, 1, 3], r"\[0, 3\)"),
                                         ([-1, 0, 1], r"min -1")])
def test_partition_validation(parts, match):
    with pytest.raises(AdaqpInputError, match=match):
        Partition(np.array(parts), 3, "manual", "fp")


def test_save_load_round_trip(tmp_path):
    g = make_graph()
    part = partition_graph(g, 3, "metis", seed=5)
    save_partition(part, tmp_path, g)
    meta = json.loads((tmp_path / "partition.json").read_text())
    assert meta["num_parts"] == 3 and meta["seed"] == 5 and meta["num_nodes"] == g.num_nodes
    assert meta["stats"]["edge_cut"] == partition_stats(g, part).edge_cut
    back = load_partition(tmp_path, g)
    assert np.array_equal(back.parts, part.parts)
    assert (back.method, back.seed, back.num_parts, back.graph_fingerprint) == ("metis", 5, 3, g.fingerprint())


def test_load_refuses_other_graph_and_corrupt_files(tmp_path):
    g = make_graph()
    save_partition(partition_graph(g, 2, "random"), tmp_path)
    with pytest.raises(AdaqpInputError, match="made for a different graph"):
        load_partition(tmp_path, make_graph(seed=99))
    with pytest.raises(AdaqpInputError, match="not a directory"):
        load_partition(tmp_path / "missing", g)
    (tmp_path / "partition.npz").write_bytes(b"not a zip")
    with pytest.raises(AdaqpInputError, match="corrupt"):
        load_partition(tmp_path, g)
    (tmp_path / "partition.json").write_text("{")
    with pytest.raises(AdaqpInputError, match="corrupt JSON"):
        load_partition(tmp_path, g)


def test_stats_refuse_graph_of_other_size():
    with pytest.raises(AdaqpInputError, match="nodes"):
        partition_stats(make_graph(n=50), partition_graph(make_graph(n=80), 2, "random"))


def test_unique_inverse_bitmap_and_sort_paths_agree():
    keys = np.random.default_rng(0).integers(0, 1000, 5000)
    for bound in (1000, 1 << 40):  # small bound: bitmap; huge bound: np.unique
        uniq, inv = unique_inverse(keys, bound)
        assert np.array_equal(uniq, np.unique(keys)) and np.array_equal(uniq[inv], keys)
        assert inv.dtype == np.int64
