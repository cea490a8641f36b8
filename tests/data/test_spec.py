"""The dataset spec string: parsing, typing, dispatch and its error messages."""

import numpy as np
import pytest

from adaqp.data import loaders
from adaqp.data.generators import rmat, sbm
from adaqp.data.spec import describe_spec_help, load_dataset, parse_spec
from adaqp.errors import AdaqpInputError


def test_bundled_names():
    assert parse_spec("cora") == ("bundled", {"name": "cora"})
    assert parse_spec(" CiteSeer ") == ("bundled", {"name": "citeseer"})


def test_generator_params_are_typed_from_signature():
    kind, p = parse_spec("sbm:nodes=1e5,classes=16,feat=128,deg=20,seed=3,homophily=0.7")
    assert kind == "sbm"
    assert p == {"nodes": 100000, "classes": 16, "feat": 128, "deg": 20.0, "seed": 3, "homophily": 0.7}
    assert all(type(p[k]) is int for k in ("nodes", "classes", "feat", "seed"))
    assert type(p["deg"]) is float
    kind, p = parse_spec("RMAT: scale = 18 , edgefactor=16,a=0.6,")
    assert kind == "rmat" and p == {"scale": 18, "edgefactor": 16, "a": 0.6}
    assert parse_spec("sbm:nodes=10,classes=2,feat=2,p_in=0.5,p_out=0.1")[1]["p_in"] == 0.5
    assert parse_spec("sbm:nodes=100_000,classes=2,feat=2")[1]["nodes"] == 100000


@pytest.mark.parametrize("spec, words", [
    ("sbm:nodez=5", ["unknown key 'nodez'", "nodes, classes, feat, deg"]),
    ("rmat:scale=10,bogus=1", ["unknown key 'bogus'", "edgefactor"]),
    ("sbm:nodes=abc,classes=2,feat=2", ["'nodes'", "integer", "'abc'"]),
    ("sbm:nodes=2.5,classes=2,feat=2", ["'nodes'", "integer"]),
    ("sbm:nodes=10,classes=2,feat=2,deg=lots", ["'deg'", "number"]),
    ("sbm:nodes=10,nodes=11,classes=2,feat=2", ["'nodes'", "twice"]),
    ("sbm:nodes", ["key=value"]),
    ("sbm:nodes=10", ["missing required", "classes, feat"]),
    ("rmat", ["missing required", "scale"]),
    ("pubmed", ["unknown dataset 'pubmed'", "cora", "citeseer", "sbm:", "rmat:", ".npz"]),
    ("", ["empty dataset spec"]),
    ("some/where.npz", ["not found", "some/where.npz"]),
])
def test_spec_errors(spec, words):
    with pytest.raises(AdaqpInputError) as err:
        parse_spec(spec)
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_generator_spec_loads_same_graph_as_direct_call():
    g = load_dataset("sbm:nodes=300,classes=3,feat=4,deg=6,seed=2")
    h = sbm(300, 3, 4, deg=6, seed=2)
    assert np.array_equal(g.indices, h.indices) and np.array_equal(g.features, h.features)
    r = load_dataset("rmat:scale=6,edgefactor=4,feat=3,classes=2,seed=1")
    assert np.array_equal(r.indptr, rmat(6, 4, 3, 2, seed=1).indptr)


def test_generator_validation_surfaces_through_spec():
    with pytest.raises(AdaqpInputError, match="homophily"):
        load_dataset("sbm:nodes=10,classes=2,feat=2,homophily=2")


def test_paths_are_classified(tmp_path):
    f = tmp_path / "g.npz"
    np.savez(f, edge_index=np.array([[0], [1]]), features=np.ones((2, 2), np.float32),
             labels=np.array([0, 1]), train_mask=np.array([True, False]),
             val_mask=np.array([False, True]), test_mask=np.array([False, False]))
    assert parse_spec(str(f)) == ("npz", {"path": str(f)})
    assert load_dataset(str(f)).num_edges == 1
    saint = tmp_path / "saint"
    saint.mkdir()
    (saint / "adj_full.npz").write_bytes(b"")
    assert parse_spec(str(saint))[0] == "graphsaint"
    ogb = tmp_path / "ogb"
    (ogb / "raw").mkdir(parents=True)
    (ogb / "raw" / "edge.csv.gz").write_bytes(b"")
    assert parse_spec(str(ogb)) == ("ogb", {"path": str(ogb)})


def test_folders_dispatch_to_their_loader(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(loaders, "load_graphsaint", lambda p: calls.append(("saint", p)) or "G1")
    monkeypatch.setattr(loaders, "load_ogb", lambda p: calls.append(("ogb", p)) or "G2")
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "adj_full.npz").write_bytes(b"")
    (tmp_path / "o" / "raw").mkdir(parents=True)
    (tmp_path / "o" / "raw" / "edge.csv.gz").write_bytes(b"")
    assert load_dataset(str(tmp_path / "s")) == "G1"
    assert load_dataset(str(tmp_path / "o")) == "G2"
    assert calls == [("saint", str(tmp_path / "s")), ("ogb", str(tmp_path / "o"))]


def test_unsupported_paths(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdaqpInputError, match="neither GraphSAINT"):
        parse_spec(str(tmp_path / "empty"))
    (tmp_path / "g.txt").write_text("x")
    with pytest.raises(AdaqpInputError, match="expected a .npz"):
        parse_spec(str(tmp_path / "g.txt"))


def test_help_lists_every_form():
    text = describe_spec_help()
    for w in ("cora", "citeseer", "sbm:nodes,classes,feat", "deg=20", "rmat:scale", "edgefactor=16",
              ".npz", "GraphSAINT", "OGB", "50/25/25"):
        assert w in text, w
