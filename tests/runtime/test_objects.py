"""Ranks exchange JSON and raw numpy buffers, never pickles: the helpers, and a guard on the tree."""

import re
from pathlib import Path

import numpy as np
import pytest

from adaqp.runtime.launch import spawn
from adaqp.runtime.objects import decode, encode

WORKERS = Path(__file__).with_name("objects_workers.py")
ROOT = Path(__file__).parents[2]
# every torch.distributed collective that pickles (the *_object family), by name
FORBIDDEN = re.compile(r"\b(all_gather_object|broadcast_object_list|gather_object|scatter_object_list"
                       r"|send_object_list|recv_object_list|send_object|recv_object)\b")


def _load_workers():
    import importlib.util

    spec = importlib.util.spec_from_file_location("adaqp_test_objects_workers", WORKERS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("world", [2, 3])
def test_gather_and_broadcast_across_gloo_ranks(world):
    out = spawn(f"{WORKERS}:exchange", world, timeout_s=60.0)
    w = _load_workers()
    want = [w.expected(r) for r in range(world)]
    for rank, res in enumerate(out):
        assert res["gathered"] == want, f"rank {rank} gathered something else"
        assert res["broadcast"] == want, f"rank {rank} received another broadcast"
        assert res["empty"] == [[]] * world


def test_round_trip_keeps_dtypes_shapes_and_values():
    v = {"a": np.array([[1.5, -2.0]], dtype=">f8"), "b": np.zeros((0, 3), np.int16), "c": [1, "x", None],
         "t": (1, 2.5), "s": np.float32(0.1)}
    got = decode(encode(v))
    assert got["a"].dtype == np.float64 and got["a"].tolist() == [[1.5, -2.0]]  # big-endian in, native out
    assert got["b"].dtype == np.int16 and got["b"].shape == (0, 3)
    assert got["c"] == [1, "x", None] and got["t"] == [1, 2.5]
    assert got["s"] == float(np.float32(0.1))


@pytest.mark.parametrize("bad", [{1: "int key"}, {(0, 1): "tuple key"}, {"x": {1, 2}}, {"x": object()},
                                 np.array(["str"]), np.array([object()], dtype=object),
                                 {"__ndarray__": 0}])
def test_values_json_would_alter_are_refused_on_the_sender(bad):
    with pytest.raises(TypeError):
        encode(bad)


@pytest.mark.parametrize("cut", [0, 3, 9, 20])
def test_a_truncated_or_forged_message_is_a_value_error(cut):
    data = encode({"a": np.arange(4, dtype=np.int32)})
    with pytest.raises(ValueError):
        decode(data[:cut] if cut < 20 else data[:-1])
    forged = data.replace(b"<i4", b"|O8")  # an object dtype would need pickle: refused
    with pytest.raises(ValueError, match="not allowed"):
        decode(forged)


def test_no_pickling_collective_in_the_source_tree():
    hits = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {"build", ".git"} or ".egg-info" in str(rel) or path == Path(__file__):
            continue
        for no, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if FORBIDDEN.search(line) and "*_object" not in line:
                hits.append(f"{rel}:{no}: {line.strip()}")
    assert not hits, "ranks must exchange tensors or JSON (adaqp.runtime.objects), not pickles:\n" + "\n".join(hits)
