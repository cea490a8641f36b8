"""Graph: construction, validation, CSR convention, save/load."""

import numpy as np
import pytest

from adaqp.errors import AdaqpInputError
from adaqp.graph import Graph, csr_from_edges


def _parts(n=5, f=3, seed=0):
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((n, f)).astype(np.float32)
    labels = rng.integers(0, 3, n)
    masks = [np.arange(n) % 3 == k for k in range(3)]
    return feats, labels, masks


def _graph(edges, n=5, **kw):
    feats, labels, masks = _parts(n)
    return Graph.from_edge_index("t", np.array(edges, dtype=np.int64).T.reshape(2, -1), feats, labels, *masks, **kw)


def test_csr_is_destination_indexed_sorted_and_deduplicated():
    g = _graph([(0, 1), (2, 1), (0, 1), (3, 3), (1, 4)])
    # row 1 lists its in-neighbours 0 and 2 once each; the self loop 3->3 is dropped
    assert g.indptr.tolist() == [0, 0, 2, 2, 2, 3]
    assert g.indices.tolist() == [0, 2, 1]
    assert g.num_edges == 3
    assert g.in_degree.tolist() == [0, 2, 0, 0, 1]
    assert g.out_degree.tolist() == [1, 1, 1, 0, 0]  # 0->1 counted once after dedup
    assert g.edge_index().tolist() == [[0, 2, 1], [1, 1, 4]]


def test_make_undirected_stores_both_directions():
    g = _graph([(0, 1), (1, 2)], make_undirected=True)
    assert sorted(map(tuple, g.edge_index().T.tolist())) == [(0, 1), (1, 0), (1, 2), (2, 1)]


def test_csr_from_edges_matches_scipy():
    import scipy.sparse as sp

    rng = np.random.default_rng(1)
    n, e = 50, 400
    src, dst = rng.integers(0, n, e), rng.integers(0, n, e)
    indptr, indices = csr_from_edges(src, dst, n)
    keep = src != dst
    a = sp.csr_matrix((np.ones(keep.sum()), (dst[keep], src[keep])), shape=(n, n))
    a.sum_duplicates()
    a.sort_indices()
    assert np.array_equal(indptr, a.indptr) and np.array_equal(indices, a.indices)


def test_num_classes_and_multilabel():
    g = _graph([(0, 1)])
    assert not g.multilabel and g.num_classes == int(g.labels.max()) + 1
    feats, _, masks = _parts()
    ml = Graph.from_edge_index("ml", np.array([[0], [1]]), feats, np.eye(5, 4, dtype=np.float32), *masks)
    assert ml.multilabel and ml.num_classes == 4 and ml.labels.dtype == np.float32


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(features=d["features"][:4]), "features must have shape"),
    (lambda d: d["features"].__setitem__((2, 1), np.nan), "NaN or Inf"),
    (lambda d: d["features"].__setitem__((0, 0), np.inf), "NaN or Inf"),
    (lambda d: d.update(labels=d["labels"][:3]), "labels must have shape"),
    (lambda d: d.update(labels=np.full(5, -2)), "labels must be >= -1"),
    (lambda d: d.update(train_mask=np.ones(4, bool)), "train_mask must have shape"),
    (lambda d: d.update(indices=np.array([7])), "out of range"),
    (lambda d: d.update(indptr=np.array([0, 1, 0, 1, 1, 1])), "non-decreasing"),
    (lambda d: d.update(indptr=np.array([0, 0, 0, 0, 0, 0])), "end at len(indices)"),
])
def test_validation_names_the_problem(mutate, message):
    feats, labels, masks = _parts()
    d = dict(name="bad", indptr=np.array([0, 0, 1, 1, 1, 1]), indices=np.array([0]), features=feats,
             labels=labels, train_mask=masks[0], val_mask=masks[1], test_mask=masks[2])
    mutate(d)
    with pytest.raises(AdaqpInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Graph(**d)


def test_empty_graph_is_refused():
    with pytest.raises(AdaqpInputError, match="empty graph"):
        Graph.from_edge_index("e", np.zeros((2, 0), np.int64), np.zeros((0, 3), np.float32),
                              np.zeros(0, np.int64), *[np.zeros(0, bool)] * 3)


def test_edge_index_out_of_range_is_refused():
    with pytest.raises(AdaqpInputError, match="out of range"):
        _graph([(0, 9)])


def test_save_load_round_trip_and_fingerprint(tmp_path):
    g = _graph([(0, 1), (2, 1), (1, 4), (4, 0)])
    path = g.save(tmp_path / "g.npz")
    h = Graph.load(path)
    assert h.name == g.name
    for k in ("indptr", "indices", "features", "labels", "train_mask", "val_mask", "test_mask"):
        assert np.array_equal(getattr(g, k), getattr(h, k)), k
    assert h.fingerprint() == g.fingerprint()
    assert _graph([(0, 1)]).fingerprint() != g.fingerprint()


def test_load_reports_missing_and_corrupt_files(tmp_path):
    with pytest.raises(AdaqpInputError, match="file not found"):
        Graph.load(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(AdaqpInputError, match="corrupt"):
        Graph.load(bad)
    np.savez(tmp_path / "partial.npz", indptr=np.array([0, 0]))
    with pytest.raises(AdaqpInputError, match="lacks array"):
        Graph.load(tmp_path / "partial.npz")
