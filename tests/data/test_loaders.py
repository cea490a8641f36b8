"""Loaders: round trips for every layout and one clear AdaqpInputError for each malformed input."""

import gzip
import json
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from adaqp.data.loaders import from_pyg, load_graphsaint, load_npz_dataset, load_ogb
from adaqp.errors import AdaqpInputError
from adaqp.graph import Graph

# A 6-node undirected graph: a path 0-1-2-3-4 plus edge 1-5, and its features.
UND = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [1, 5]])
N = 6
X = np.arange(N * 3, dtype=np.float32).reshape(N, 3)


def _pairs(g):
    src, dst = g.edge_index()
    return set(zip(src.tolist(), dst.tolist()))


BOTH = {(int(a), int(b)) for a, b in UND} | {(int(b), int(a)) for a, b in UND}


# ---- GraphSAINT ----------------------------------------------------------------------------
def _write_saint(d, class_map=None, role=None, feats=X, adj=None):
    d.mkdir(exist_ok=True)
    if adj is None:
        rows = np.concatenate([UND[:, 0], UND[:, 1]])
        cols = np.concatenate([UND[:, 1], UND[:, 0]])
        adj = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(N, N))
    sp.save_npz(d / "adj_full.npz", adj)
    np.save(d / "feats.npy", feats)
    cm = class_map if class_map is not None else {str(i): i % 3 for i in range(N)}
    (d / "class_map.json").write_text(json.dumps(cm))
    (d / "role.json").write_text(json.dumps(role if role is not None else {"tr": [0, 1], "va": [2, 3], "te": [4, 5]}))
    return d


def test_graphsaint_single_label(tmp_path):
    g = load_graphsaint(_write_saint(tmp_path / "toy", class_map={str(i): i % 3 for i in range(N - 1)}))
    assert g.name == "toy" and g.num_nodes == N and _pairs(g) == BOTH
    assert np.array_equal(g.features, X)
    assert g.labels.tolist() == [0, 1, 2, 0, 1, -1]  # node 5 is absent from class_map
    assert np.flatnonzero(g.train_mask).tolist() == [0, 1]
    assert np.flatnonzero(g.val_mask).tolist() == [2, 3]
    assert np.flatnonzero(g.test_mask).tolist() == [4, 5]


def test_graphsaint_multi_label(tmp_path):
    cm = {str(i): [i % 2, 1, 0, int(i == 3)] for i in range(N)}
    g = load_graphsaint(_write_saint(tmp_path / "ml", class_map=cm))
    assert g.multilabel and g.labels.dtype == np.float32 and g.labels.shape == (N, 4)
    assert g.labels[3].tolist() == [1, 1, 0, 1]


def _bad_saint(tmp_path, what):
    d = _write_saint(tmp_path / "bad")
    if what == "no feats":
        (d / "feats.npy").unlink()
    elif what == "nan feats":
        f = X.copy()
        f[2, 1] = np.nan
        np.save(d / "feats.npy", f)
    elif what == "1-d feats":
        np.save(d / "feats.npy", np.zeros(N))
    elif what == "pickled feats":
        np.save(d / "feats.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif what == "corrupt adj":
        (d / "adj_full.npz").write_bytes(b"not a zip")
    elif what == "adj shape":
        sp.save_npz(d / "adj_full.npz", sp.csr_matrix((N + 1, N + 1)))
    elif what == "adj ids":
        bad = sp.csr_matrix((np.ones(1), np.array([N + 3]), np.array([0, 1, 1, 1, 1, 1, 1])), shape=(N, N))
        sp.save_npz(d / "adj_full.npz", bad)
    elif what == "corrupt json":
        (d / "class_map.json").write_text("{not json")
    elif what == "float class":
        (d / "class_map.json").write_text(json.dumps({"0": 1.5}))
    elif what == "string key":
        (d / "class_map.json").write_text(json.dumps({"zero": 1}))
    elif what == "key range":
        (d / "class_map.json").write_text(json.dumps({"0": 1, str(N): 0}))
    elif what == "ragged":
        (d / "class_map.json").write_text(json.dumps({"0": [0, 1], "1": [1]}))
    elif what == "not 0/1":
        (d / "class_map.json").write_text(json.dumps({"0": [0, 2], "1": [1, 0]}))
    elif what == "role key":
        (d / "role.json").write_text(json.dumps({"tr": [0], "te": [1]}))
    elif what == "role range":
        (d / "role.json").write_text(json.dumps({"tr": [0], "va": [99], "te": [1]}))
    elif what == "role type":
        (d / "role.json").write_text(json.dumps({"tr": ["a"], "va": [], "te": [1]}))
    return d


@pytest.mark.parametrize("what, words", [
    ("no feats", ["file not found", "feats.npy"]),
    ("nan feats", ["feats.npy", "NaN"]),
    ("1-d feats", ["feats.npy", "2-D"]),
    ("pickled feats", ["feats.npy", "cannot read"]),
    ("corrupt adj", ["adj_full.npz", "not a .npz"]),
    ("adj shape", ["adj_full.npz", "7x7"]),
    ("adj ids", ["adj_full.npz", "out of range"]),
    ("corrupt json", ["class_map.json", "cannot read"]),
    ("float class", ["class_map.json", "integers"]),
    ("string key", ["class_map.json", "'zero'"]),
    ("key range", ["class_map.json", "out of range"]),
    ("ragged", ["class_map.json", "equal length"]),
    ("not 0/1", ["class_map.json", "0/1"]),
    ("role key", ["role.json", "va"]),
    ("role range", ["role.json", "va", "out of range"]),
    ("role type", ["role.json", "tr", "integers"]),
])
def test_graphsaint_malformed(tmp_path, what, words):
    d = _bad_saint(tmp_path, what)
    with pytest.raises(AdaqpInputError) as err:
        load_graphsaint(d)
    msg = str(err.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)


def test_graphsaint_not_a_directory(tmp_path):
    with pytest.raises(AdaqpInputError, match="not a directory"):
        load_graphsaint(tmp_path / "nope")


# ---- OGB -------------------------------------------------------------------------------------
def _gz(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.write("".join(line + "\n" for line in lines))


def _write_ogb(d, sub="sales_ranking", labels=None):
    _gz(d / "raw" / "edge.csv.gz", [f"{a},{b}" for a, b in UND])  # one direction, as OGB stores it
    _gz(d / "raw" / "node-feat.csv.gz", [",".join(str(v) for v in row) for row in X])
    _gz(d / "raw" / "node-label.csv.gz", labels or ["0", "1", "2", "nan", "1", "0"])
    split = d / "split" / sub if sub else d / "split"
    _gz(split / "train.csv.gz", ["0", "1", "2"])
    _gz(split / "valid.csv.gz", ["4"])
    _gz(split / "test.csv.gz", ["5"])
    return d


@pytest.mark.parametrize("sub", ["sales_ranking", None])
def test_ogb_round_trip(tmp_path, sub):
    g = load_ogb(_write_ogb(tmp_path / "ogbn-toy", sub))
    assert g.name == "ogbn-toy" and _pairs(g) == BOTH  # made undirected
    assert np.allclose(g.features, X)
    assert g.labels.tolist() == [0, 1, 2, -1, 1, 0]
    assert np.flatnonzero(g.train_mask).tolist() == [0, 1, 2]
    assert np.flatnonzero(g.val_mask).tolist() == [4] and np.flatnonzero(g.test_mask).tolist() == [5]


def test_ogb_multilabel_and_empty_split(tmp_path):
    d = _write_ogb(tmp_path / "p", labels=["0,1", "1,1", "0,0", "1,0", "0,0", "1,1"])
    _gz(d / "split" / "sales_ranking" / "valid.csv.gz", [])
    g = load_ogb(d)
    assert g.multilabel and g.labels.shape == (N, 2) and g.val_mask.sum() == 0


def _bad_ogb(tmp_path, what):
    d = _write_ogb(tmp_path / "bad")
    raw, split = d / "raw", d / "split" / "sales_ranking"
    if what == "not gzip":
        (raw / "edge.csv.gz").write_bytes(b"0,1\n1,2\n")
    elif what == "truncated gzip":
        data = (raw / "node-feat.csv.gz").read_bytes()
        (raw / "node-feat.csv.gz").write_bytes(data[: len(data) // 2])
    elif what == "text feature":
        _gz(raw / "node-feat.csv.gz", ["1,2,x"] + ["1,2,3"] * (N - 1))
    elif what == "nan feature":
        _gz(raw / "node-feat.csv.gz", ["1,2,nan"] + ["1,2,3"] * (N - 1))
    elif what == "ragged feature":
        _gz(raw / "node-feat.csv.gz", ["1,2,3", "1,2,3,4"] + ["1,2,3"] * (N - 2))
    elif what == "edge range":
        _gz(raw / "edge.csv.gz", ["0,1", f"2,{N}"])
    elif what == "edge columns":
        _gz(raw / "edge.csv.gz", ["0,1,2", "2,3,4"])
    elif what == "label rows":
        _gz(raw / "node-label.csv.gz", ["0", "1"])
    elif what == "label value":
        _gz(raw / "node-label.csv.gz", ["0", "1.5", "1", "1", "1", "1"])
    elif what == "two splits":
        _gz(d / "split" / "time" / "train.csv.gz", ["0"])
    elif what == "split range":
        _gz(split / "test.csv.gz", ["-1"])
    elif what == "no features":
        (raw / "node-feat.csv.gz").unlink()
    return d


@pytest.mark.parametrize("what, words", [
    ("not gzip", ["edge.csv.gz", "cannot read"]),
    ("truncated gzip", ["node-feat.csv.gz", "cannot read"]),
    ("text feature", ["node-feat.csv.gz", "cannot read"]),
    ("nan feature", ["node-feat.csv.gz", "NaN"]),
    ("ragged feature", ["node-feat.csv.gz"]),
    ("edge range", ["edge.csv.gz", "out of range"]),
    ("edge columns", ["edge.csv.gz", "2 column"]),
    ("label rows", ["node-label.csv.gz", "2 label rows"]),
    ("label value", ["node-label.csv.gz", "integer class ids"]),
    ("two splits", ["split", "sales_ranking, time"]),
    ("split range", ["test.csv.gz", "out of range"]),
    ("no features", ["file not found", "node-feat.csv.gz"]),
])
def test_ogb_malformed(tmp_path, what, words):
    d = _bad_ogb(tmp_path, what)
    with pytest.raises(AdaqpInputError) as err:
        load_ogb(d)
    msg = str(err.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)


# ---- PyG duck-typed Data -----------------------------------------------------------------------
def _data(**over):
    ei = np.concatenate([UND.T, UND.T[::-1]], axis=1)
    base = dict(edge_index=ei, x=X, y=np.array([0, 1, 2, 0, 1, 2]),
                train_mask=np.array([1, 1, 0, 0, 0, 0], bool), val_mask=np.array([0, 0, 1, 0, 0, 0], bool),
                test_mask=np.array([0, 0, 0, 1, 1, 1], bool))
    base.update(over)
    return SimpleNamespace(**{k: v for k, v in base.items() if v is not None})


def test_from_pyg_numpy_attributes():
    g = from_pyg(_data(), name="toy")
    assert g.name == "toy" and _pairs(g) == BOTH
    assert g.labels.tolist() == [0, 1, 2, 0, 1, 2] and g.train_mask.sum() == 2 and g.test_mask.sum() == 3


def test_from_pyg_torch_tensors_and_index_masks():
    torch = pytest.importorskip("torch")
    d = _data(edge_index=torch.as_tensor(UND.T), x=torch.as_tensor(X), y=torch.tensor([[0], [1], [1], [0], [1], [0]]),
              train_mask=torch.tensor([0, 5]), val_mask=None, test_mask=torch.tensor([True] * 6).reshape(6, 1))
    g = from_pyg(d, make_undirected=True)
    assert _pairs(g) == BOTH and g.labels.tolist() == [0, 1, 1, 0, 1, 0]
    assert np.flatnonzero(g.train_mask).tolist() == [0, 5] and g.val_mask.sum() == 0 and g.test_mask.all()


def test_from_pyg_default_split_and_multilabel():
    y = np.array([0, -1, 1, 1, 0, 1])
    g = from_pyg(_data(y=y, train_mask=None, val_mask=None, test_mask=None))
    assert (g.train_mask | g.val_mask | g.test_mask).sum() == 5  # unlabelled node 1 left out
    assert not (g.train_mask | g.val_mask | g.test_mask)[1]
    assert g.train_mask.sum() == 2 and g.val_mask.sum() == 1
    ml = from_pyg(_data(y=np.eye(N, 3, dtype=np.float32)))
    assert ml.multilabel and ml.labels.shape == (N, 3)


@pytest.mark.parametrize("over, word", [
    (dict(x=None), "needs x"),
    (dict(edge_index=np.zeros((3, 2), int)), "edge_index must have shape"),
    (dict(edge_index=np.array([[0], [N]])), "out of range"),
    (dict(y=np.zeros(N - 1, int)), "y must have shape"),
    (dict(y=np.full(N, 0.5)), "integer class ids"),
    (dict(x=np.full((N, 2), np.inf)), "NaN or Inf"),
    (dict(train_mask=np.ones(N + 1, bool)), "train_mask"),
])
def test_from_pyg_malformed(over, word):
    with pytest.raises(AdaqpInputError, match=word):
        from_pyg(_data(**over))


# ---- plain .npz ------------------------------------------------------------------------------
def _npz_arrays():
    d = _data()
    return dict(edge_index=d.edge_index, features=X, labels=d.y, train_mask=d.train_mask,
                val_mask=d.val_mask, test_mask=d.test_mask)


def test_npz_edge_index_layout(tmp_path):
    np.savez(tmp_path / "toy.npz", **_npz_arrays())
    g = load_npz_dataset(tmp_path / "toy.npz")
    assert g.name == "toy" and _pairs(g) == BOTH and np.array_equal(g.features, X)


def test_npz_graph_save_layout(tmp_path):
    g = load_npz_dataset(np.savez(tmp_path / "a.npz", **_npz_arrays()) or tmp_path / "a.npz")
    g.save(tmp_path / "saved.npz")
    h = load_npz_dataset(tmp_path / "saved.npz")
    assert h.name == "a" and np.array_equal(h.indptr, g.indptr) and np.array_equal(h.indices, g.indices)
    assert np.array_equal(h.labels, g.labels) and np.array_equal(h.test_mask, g.test_mask)
    assert isinstance(h, Graph)


@pytest.mark.parametrize("change, word", [
    (dict(labels=None), r"lacks array\(s\) labels"),
    (dict(train_mask=np.ones(N, np.int8)), "train_mask must be boolean"),
    (dict(labels=np.full(N, 1.0)), "labels must be integers"),
    (dict(edge_index=np.array([[0, 1], [1, N]])), "out of range"),
    (dict(edge_index=np.array([[0.0], [1.0]])), "integers"),
    (dict(features=np.zeros(N)), "2-D"),
    (dict(val_mask=np.ones(N - 1, bool)), "val_mask"),
    (dict(labels=np.full((N, 2), 3.0)), "0/1"),
])
def test_npz_malformed(tmp_path, change, word):
    arrays = {**_npz_arrays(), **change}
    np.savez(tmp_path / "bad.npz", **{k: v for k, v in arrays.items() if v is not None})
    with pytest.raises(AdaqpInputError, match=word) as err:
        load_npz_dataset(tmp_path / "bad.npz")
    assert "bad.npz" in str(err.value)


def test_npz_missing_and_corrupt(tmp_path):
    with pytest.raises(AdaqpInputError, match="file not found"):
        load_npz_dataset(tmp_path / "none.npz")
    (tmp_path / "c.npz").write_bytes(b"\x00garbage")
    with pytest.raises(AdaqpInputError, match="corrupt"):
        load_npz_dataset(tmp_path / "c.npz")
