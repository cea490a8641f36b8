"""Atomic, pickle-free artifact I/O."""

import numpy as np
import pytest

from adaqp.errors import AdaqpInputError
from adaqp.io import read_json, read_npz, write_json, write_npz


def test_json_round_trip_with_numpy_values(tmp_path):
    p = write_json(tmp_path / "sub" / "a.json", {"n": np.int64(3), "x": np.float32(0.5), "v": np.arange(3)})
    assert read_json(p) == {"n": 3, "x": 0.5, "v": [0, 1, 2]}
    assert [f.name for f in p.parent.iterdir()] == ["a.json"]  # no temporary left behind


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    p = write_json(tmp_path / "a.json", {"ok": 1})
    with pytest.raises(TypeError):
        write_json(p, {"bad": object()})
    assert read_json(p) == {"ok": 1}
    assert [f.name for f in tmp_path.iterdir()] == ["a.json"]


def test_npz_refuses_object_arrays(tmp_path):
    with pytest.raises(TypeError, match="pickle"):
        write_npz(tmp_path / "a.npz", {"o": np.array([{"a": 1}], dtype=object)})
    assert not (tmp_path / "a.npz").exists()


def test_npz_round_trip_and_errors(tmp_path):
    p = write_npz(tmp_path / "a.npz", {"x": np.arange(4), "s": np.array("name")})
    z = read_npz(p, required=("x",))
    assert z["x"].tolist() == [0, 1, 2, 3] and str(z["s"]) == "name"
    with pytest.raises(AdaqpInputError, match="lacks array"):
        read_npz(p, required=("y",))
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(AdaqpInputError, match="corrupt JSON"):
        read_json(tmp_path / "bad.json")
