"""Synthetic generators: determinism, sizes, symmetry, homophily, learnability, validation."""

import numpy as np
import pytest
import scipy.sparse as sp

from adaqp.data import generators as gen
from adaqp.data.generators import random_split, rmat, sbm
from adaqp.errors import AdaqpInputError


def _edge_keys(g):
    src, dst = g.edge_index()
    return src, dst


def _assert_symmetric_simple(g):
    src, dst = _edge_keys(g)
    n = g.num_nodes
    assert not np.any(src == dst), "self loops stored"
    fwd = np.sort(dst * n + src)
    assert np.array_equal(fwd, np.unique(fwd)), "duplicate edges stored"
    assert np.array_equal(fwd, np.sort(src * n + dst)), "graph is not symmetric"


def _assert_split(g, fractions=(0.5, 0.25, 0.25)):
    masks = np.stack([g.train_mask, g.val_mask, g.test_mask])
    assert np.all(masks.sum(0) == 1), "masks must partition the nodes"
    n = g.num_nodes
    assert g.train_mask.sum() == int(np.floor(fractions[0] * n))
    assert g.val_mask.sum() == int(np.floor(fractions[1] * n))


def _same(g, h):
    return all(np.array_equal(getattr(g, k), getattr(h, k)) for k in
               ("indptr", "indices", "features", "labels", "train_mask", "val_mask", "test_mask"))


def _probe_accuracy(x, g):
    """Least-squares linear probe (one-hot targets) trained on train, scored on test."""
    c = g.num_classes
    xb = np.hstack([x, np.ones((x.shape[0], 1), np.float32)])
    w = np.linalg.lstsq(xb[g.train_mask], np.eye(c)[g.labels[g.train_mask]], rcond=None)[0]
    return float(np.mean(np.argmax(xb[g.test_mask] @ w, 1) == g.labels[g.test_mask]))


# ---- SBM -----------------------------------------------------------------------------------
def test_sbm_is_deterministic_by_seed():
    a, b = sbm(600, 3, 8, seed=1), sbm(600, 3, 8, seed=1)
    c = sbm(600, 3, 8, seed=2)
    assert _same(a, b)
    assert not np.array_equal(a.features, c.features)
    assert not (a.num_edges == c.num_edges and np.array_equal(a.indices, c.indices))
    assert not np.array_equal(a.train_mask, c.train_mask)


def test_sbm_sizes_degree_symmetry_and_split():
    g = sbm(3000, 5, 12, deg=16, seed=3)
    assert g.name == "sbm-n3000-c5"
    assert g.num_nodes == 3000 and g.features.shape == (3000, 12)
    assert g.features.dtype == np.float32 and g.labels.dtype == np.int64
    assert abs(g.num_edges / g.num_nodes - 16) < 0.05 * 16
    counts = np.bincount(g.labels)
    assert counts.size == 5 and counts.max() - counts.min() <= 1
    _assert_symmetric_simple(g)
    _assert_split(g)


@pytest.mark.parametrize("h", [0.1, 0.5, 0.8, 1.0])
def test_sbm_homophily_matches_request(h):
    g = sbm(4000, 4, 4, deg=12, homophily=h, seed=0)
    src, dst = g.edge_index()
    measured = np.mean(g.labels[src] == g.labels[dst])
    assert abs(measured - h) < 0.03


def test_sbm_pair_probabilities_override_degree_and_homophily():
    g = sbm(2000, 4, 4, p_in=0.02, p_out=0.002, seed=0)
    deg = 0.02 * 499 + 0.002 * 1500
    src, dst = g.edge_index()
    assert abs(g.num_edges / g.num_nodes - deg) < 0.05 * deg
    assert abs(np.mean(g.labels[src] == g.labels[dst]) - 0.02 * 499 / deg) < 0.03
    with pytest.raises(AdaqpInputError, match="p_in and p_out"):
        sbm(100, 2, 2, p_in=0.1)


def test_sbm_features_learnable_and_graph_helps():
    g = sbm(4000, 8, 32, deg=20, seed=5)
    adj = sp.csr_matrix((np.ones(g.num_edges, np.float32), g.indices, g.indptr), shape=(g.num_nodes,) * 2)
    mean_nbr = (adj @ g.features) / np.maximum(g.in_degree, 1)[:, None]
    feat_only = _probe_accuracy(g.features, g)
    with_graph = _probe_accuracy(np.hstack([g.features, mean_nbr]), g)
    assert feat_only > 2.5 / 8, "features alone must beat chance clearly"
    assert with_graph > feat_only + 0.15, "one hop of aggregation must help clearly"


def test_sbm_chunked_paths(monkeypatch):
    monkeypatch.setattr(gen, "_EDGE_CHUNK", 777)
    monkeypatch.setattr(gen, "_FEAT_CHUNK", 100)
    g = sbm(1000, 3, 5, deg=10, seed=0)
    _assert_symmetric_simple(g)
    assert abs(g.num_edges / g.num_nodes - 10) < 1.0
    assert np.all(np.isfinite(g.features))


def test_sbm_edge_cases():
    g = sbm(1, 1, 1, deg=5)
    assert g.num_nodes == 1 and g.num_edges == 0 and g.test_mask.sum() == 1
    assert sbm(50, 1, 2, deg=0).num_edges == 0


@pytest.mark.parametrize("kwargs, word", [
    (dict(nodes=0, classes=1, feat=1), "nodes"),
    (dict(nodes=10.5, classes=1, feat=1), "nodes must be an integer"),
    (dict(nodes=10, classes=2, feat=2.0), "feat must be an integer"),
    (dict(nodes=10, classes=0, feat=1), "classes"),
    (dict(nodes=10, classes=2, feat=0), "feat"),
    (dict(nodes=10, classes=2, feat=2, deg=-1), "deg"),
    (dict(nodes=10, classes=2, feat=2, deg=float("nan")), "deg"),
    (dict(nodes=10, classes=2, feat=2, homophily=1.5), "homophily"),
    (dict(nodes=10, classes=2, feat=2, seed=-3), "seed"),
    (dict(nodes=10, classes=2, feat=2, signal=-1), "signal"),
    (dict(nodes=3, classes=5, feat=2), "classes"),
])
def test_sbm_validation(kwargs, word):
    with pytest.raises(AdaqpInputError, match=word):
        sbm(**kwargs)


# ---- R-MAT ---------------------------------------------------------------------------------
def test_rmat_is_deterministic_by_seed():
    a, b, c = rmat(9, 8, 4, 3, seed=7), rmat(9, 8, 4, 3, seed=7), rmat(9, 8, 4, 3, seed=8)
    assert _same(a, b)
    assert not np.array_equal(a.indptr, c.indptr) or not np.array_equal(a.indices, c.indices)


def test_rmat_sizes_symmetry_and_skew():
    g = rmat(12, 16, feat=8, classes=4, seed=1)
    n = 1 << 12
    assert g.name == "rmat-s12-e16" and g.num_nodes == n
    assert g.features.shape == (n, 8) and g.num_classes == 4
    # At most 2 * edgefactor * n directed edges; dedup of R-MAT drops a noticeable share only.
    assert 0.6 * 2 * 16 * n < g.num_edges <= 2 * 16 * n
    _assert_symmetric_simple(g)
    _assert_split(g)
    deg = g.in_degree
    assert deg.max() > 20 * deg.mean(), "R-MAT must have a heavy-tailed degree distribution"
    assert np.mean(deg == 0) > 0.05, "R-MAT leaves many isolated vertices at these parameters"
    # The permutation spreads hubs over the id range: the hub is not always vertex 0.
    hubs = np.argsort(deg)[-5:]
    assert not np.all(hubs < 16)


def test_rmat_uniform_parameters_give_flat_degrees():
    g = rmat(10, 8, 2, 2, a=0.25, b=0.25, c=0.25)
    assert g.in_degree.max() < 4 * g.in_degree.mean()


def test_rmat_chunked_paths(monkeypatch):
    monkeypatch.setattr(gen, "_EDGE_CHUNK", 1000)
    g = rmat(8, 10, 2, 2, seed=0)
    _assert_symmetric_simple(g)


@pytest.mark.parametrize("kwargs, word", [
    (dict(scale=0), "scale"), (dict(scale=31), "scale"), (dict(scale=2.5), "scale"),
    (dict(scale=4, edgefactor=0), "edgefactor"), (dict(scale=4, edgefactor=1.5), "edgefactor"),
    (dict(scale=4, feat=0), "feat"), (dict(scale=4, classes=0), "classes"),
    (dict(scale=2, classes=5), "classes"),
    (dict(scale=4, a=0.6, b=0.3, c=0.2), "a, b, c"), (dict(scale=4, a=-0.1), "a, b, c"),
])
def test_rmat_validation(kwargs, word):
    with pytest.raises(AdaqpInputError, match=word):
        rmat(**kwargs)


def test_random_split_over_candidates():
    rng = np.random.default_rng(0)
    tr, va, te = random_split(10, rng, candidates=np.array([1, 3, 5, 7]))
    assert tr.sum() == 2 and va.sum() == 1 and te.sum() == 1
    assert not np.any((tr | va | te)[[0, 2, 4, 6, 8, 9]])
