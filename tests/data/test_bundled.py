"""The bundled Planetoid datasets: sizes, split and label conventions from files/README.md."""

import numpy as np
import pytest

from adaqp.data.bundled import BUNDLED, load_bundled
from adaqp.errors import AdaqpInputError


@pytest.mark.parametrize("name, n, e, f, c, split", [
    ("cora", 2708, 10556, 1433, 7, (140, 500, 1000)),
    ("citeseer", 3327, 9104, 3703, 6, (120, 500, 1000)),
])
def test_bundled_statistics(name, n, e, f, c, split):
    g = load_bundled(name)
    assert g.name == name
    assert (g.num_nodes, g.num_edges, g.num_features, g.num_classes) == (n, e, f, c)
    assert (int(g.train_mask.sum()), int(g.val_mask.sum()), int(g.test_mask.sum())) == split
    assert not np.any(g.train_mask & g.test_mask) and not np.any(g.val_mask & g.test_mask)
    src, dst = g.edge_index()
    assert not np.any(src == dst)
    assert np.array_equal(np.sort(dst * n + src), np.sort(src * n + dst)), "stored both ways"
    assert set(np.unique(g.features).tolist()) <= {0.0, 1.0}  # raw binary bag of words


def test_citeseer_unlabelled_nodes():
    g = load_bundled("citeseer")
    unlabelled = g.labels == -1
    assert unlabelled.sum() == 15
    assert not np.any(unlabelled & (g.train_mask | g.val_mask))
    assert load_bundled("cora").labels.min() == 0


def test_bundled_registry_and_errors():
    assert set(BUNDLED) == {"cora", "citeseer"}
    assert load_bundled("CORA").num_nodes == 2708
    with pytest.raises(AdaqpInputError, match="cora, citeseer"):
        load_bundled("pubmed")


def test_provenance_readme_ships_with_the_data():
    from importlib import resources

    text = resources.files("adaqp.data").joinpath("files").joinpath("README.md").read_text()
    assert "Planetoid" in text and "cora.npz" in text
