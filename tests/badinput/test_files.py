"""Every file the CLI reads, damaged by hypothesis: exit 0 or one error line with exit 2, never a traceback.

Covered: graph ``.npz`` (both layouts), GraphSAINT and OGB folders, partitions (``--load``),
BitPlans (``--bits FILE``, with the digest recomputed so the structure itself is checked), cluster
YAMLs (``--cluster``), profiles (``--profile``) and checkpoints (the loader). docs/bad-input.md
lists the classes.
"""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from helpers.badinput import (ARRAY_MUTATIONS, BOUNDED, assert_refused_or_ok, byte_damage, damage_bytes, json_damage,
                     mutate_array, mutate_json_file, mutate_npz, mutate_tree, run_cli, write_npz_raw)

GRAPH_SPEC = "sbm:nodes=60,classes=3,feat=8,deg=4,seed=0"
ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """One valid file of every kind, made once; each example damages a copy."""
    d = tmp_path_factory.mktemp("valid")
    for argv in (["data", GRAPH_SPEC, "--save", d / "g.npz"],
                 ["partition", d / "g.npz", "--parts", "2", "--save-halo", "--out", d / "part"],
                 ["plan", d / "g.npz", "--parts", "2", "--cluster", "local-cpu", "--mode", "lambda",
                  "--out", d / "plan"]):
        assert run_cli(argv)[0] == 0, argv
    from adaqp.data.spec import load_dataset

    g = load_dataset(str(d / "g.npz"))
    ei = g.edge_index()
    write_npz_raw(d / "edges.npz", {"edge_index": ei, "features": g.features, "labels": g.labels,
                                    "train_mask": g.train_mask, "val_mask": g.val_mask, "test_mask": g.test_mask})
    _write_saint(d / "saint", g)
    _write_ogb(d / "ogb", g)
    return d


def _write_saint(d: Path, g) -> None:
    import scipy.sparse as sp

    d.mkdir()
    n = g.num_nodes
    sp.save_npz(d / "adj_full.npz", sp.csr_matrix((np.ones(g.num_edges, np.float32), g.indices, g.indptr), (n, n)))
    np.save(d / "feats.npy", g.features)
    (d / "class_map.json").write_text(json.dumps({str(i): int(c) for i, c in enumerate(g.labels)}))
    roles = {r: np.flatnonzero(m).tolist() for r, m in zip(("tr", "va", "te"), (g.train_mask, g.val_mask, g.test_mask))}
    (d / "role.json").write_text(json.dumps(roles))


def _gz(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.writelines(",".join(str(x) for x in np.atleast_1d(r)) + "\n" for r in rows)


def _write_ogb(d: Path, g) -> None:
    _gz(d / "raw" / "node-feat.csv.gz", g.features)
    _gz(d / "raw" / "edge.csv.gz", g.edge_index().T)
    _gz(d / "raw" / "node-label.csv.gz", g.labels)
    for name, m in (("train", g.train_mask), ("valid", g.val_mask), ("test", g.test_mask)):
        _gz(d / "split" / "random" / f"{name}.csv.gz", np.flatnonzero(m))


def _copy(base: Path, name: str, into: str) -> Path:
    src, dst = base / name, Path(into) / name
    (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    return dst


GRAPH_KEYS = ("indptr", "indices", "features", "labels", "train_mask", "val_mask", "test_mask", "name", "format")
EDGE_KEYS = ("edge_index", "features", "labels", "train_mask", "val_mask", "test_mask")
array_damage = st.tuples(st.sampled_from(ARRAY_MUTATIONS), st.integers(0, 10**6))


@BOUNDED
@given(layout=st.sampled_from(("g.npz", "edges.npz")), key=st.integers(0, 100), how=array_damage)
def test_graph_npz_arrays(base, layout, key, how):
    keys = GRAPH_KEYS if layout == "g.npz" else EDGE_KEYS
    with tempfile.TemporaryDirectory() as tmp:
        path = _copy(base, layout, tmp)
        mutate_npz(path, keys[key % len(keys)], *how)
        assert_refused_or_ok(["data", path])


@BOUNDED
@given(how=byte_damage)
def test_graph_npz_bytes(base, how):
    with tempfile.TemporaryDirectory() as tmp:
        path = _copy(base, "g.npz", tmp)
        damage_bytes(path, how)
        assert_refused_or_ok(["data", path])


@BOUNDED
@given(which=st.sampled_from(("adj_full.npz", "feats.npy", "class_map.json", "role.json")),
       array=array_damage, tree=json_damage, raw=byte_damage, raw_bytes=st.booleans())
def test_graphsaint_folder(base, which, array, tree, raw, raw_bytes):
    with tempfile.TemporaryDirectory() as tmp:
        d = _copy(base, "saint", tmp)
        path = d / which
        if raw_bytes:
            damage_bytes(path, raw)
        elif which == "feats.npy":
            a = mutate_array(np.load(path), *array)
            path.unlink() if a is None else np.save(path, a, allow_pickle=True)
        elif which == "adj_full.npz":
            mutate_npz(path, ("indices", "indptr", "data", "shape", "format")[array[1] % 5], *array)
        else:
            mutate_json_file(path, tree)
        assert_refused_or_ok(["data", d])


OGB_FILES = ("raw/node-feat.csv.gz", "raw/edge.csv.gz", "raw/node-label.csv.gz", "split/random/train.csv.gz")
CELLS = ("nan", "-1", "abc", "1e400", "", "99999999", "2.5", "-inf")


@BOUNDED
@given(which=st.sampled_from(OGB_FILES), line=st.integers(0, 10**6), cell=st.sampled_from(CELLS),
       kind=st.sampled_from(("cell", "drop_column", "extra_column", "bytes")), raw=byte_damage)
def test_ogb_folder(base, which, line, cell, kind, raw):
    with tempfile.TemporaryDirectory() as tmp:
        d = _copy(base, "ogb", tmp)
        path = d / which
        if kind == "bytes":
            damage_bytes(path, raw)
        else:
            rows = [r.split(",") for r in gzip.open(path, "rt").read().splitlines()]
            r = rows[line % len(rows)]
            if kind == "cell":
                r[line % len(r)] = cell
            elif kind == "drop_column":
                rows = [x[:-1] for x in rows]
            else:
                rows = [x + [cell] for x in rows]
            with gzip.open(path, "wt") as f:
                f.write("\n".join(",".join(x) for x in rows) + "\n")
        assert_refused_or_ok(["data", d])


@BOUNDED
@given(which=st.sampled_from(("partition.npz", "partition.json")), key=st.integers(0, 2),
       array=array_damage, tree=json_damage, raw=byte_damage, raw_bytes=st.booleans())
def test_partition_folder(base, which, key, array, tree, raw, raw_bytes):
    with tempfile.TemporaryDirectory() as tmp:
        d = _copy(base, "part", tmp)
        path = d / which
        if raw_bytes:
            damage_bytes(path, raw)
        elif which == "partition.npz":
            mutate_npz(path, ("parts", "format", "graph_fingerprint")[key], *array)
        else:
            mutate_json_file(path, tree)
        assert_refused_or_ok(["partition", base / "g.npz", "--parts", "2", "--load", d])


@BOUNDED
@given(which=st.sampled_from(("bitplan.npz", "bitplan.json")), key=st.integers(0, 2),
       array=array_damage, tree=json_damage, raw=byte_damage, raw_bytes=st.booleans(),
       command=st.sampled_from(("estimate", "simulate")))
def test_bitplan(base, which, key, array, tree, raw, raw_bytes, command):
    from adaqp.io import read_npz
    from adaqp.plans import _digest

    with tempfile.TemporaryDirectory() as tmp:
        d = _copy(base, "plan", tmp)
        path = d / which
        if raw_bytes:
            damage_bytes(path, raw)
        elif which == "bitplan.npz":  # the digest recomputed: the structure checks must catch it
            mutate_npz(path, ("keys", "offsets", "bits")[key], *array)
            try:
                meta = json.loads((d / "bitplan.json").read_text())
                meta["sha256"] = _digest(read_npz(path))
                (d / "bitplan.json").write_text(json.dumps(meta))
            except Exception:  # noqa: BLE001 - an array the digest cannot take: the file stays as damaged
                pass
        else:
            mutate_json_file(path, tree)
        assert_refused_or_ok([command, base / "g.npz", "--parts", "2", "--cluster", "local-cpu",
                              "--bits", d / "bitplan.json"])


@BOUNDED
@given(tree=json_damage, raw=byte_damage, raw_bytes=st.booleans())
def test_cluster_yaml(base, tree, raw, raw_bytes):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cluster.yaml"
        shutil.copy(ROOT / "costmodel" / "clusters" / "local-cpu.yaml", path)
        if raw_bytes:
            damage_bytes(path, raw)
        else:
            path.write_text(yaml.safe_dump(mutate_tree(yaml.safe_load(path.read_text()), tree)))
        assert_refused_or_ok(["estimate", base / "g.npz", "--parts", "2", "--cluster", path, "--bits", "4"])


@BOUNDED
@given(tree=json_damage, raw=byte_damage, raw_bytes=st.booleans())
def test_profile_json(base, tree, raw, raw_bytes):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "profile.json"
        shutil.copy(ROOT / "costmodel" / "profiles" / "cpu-2core.json", path)
        damage_bytes(path, raw) if raw_bytes else mutate_json_file(path, tree)
        assert_refused_or_ok(["estimate", base / "g.npz", "--parts", "2", "--cluster", "local-cpu",
                              "--profile", path, "--bits", "4"])


@BOUNDED
@given(raw=byte_damage)
def test_checkpoint_loader(raw):
    import torch

    from adaqp.errors import AdaqpInputError
    from adaqp.runtime.checkpoint import load_checkpoint, save_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        path = save_checkpoint(Path(tmp) / "rank0.pt", {"epoch": 3, "model": {"w": torch.ones(4, 3)},
                                                        "bits": np.arange(5, dtype=np.int8)})
        damage_bytes(path, raw)
        try:
            state = load_checkpoint(path)
        except AdaqpInputError as e:
            assert str(e) and "\n" not in str(e)
        else:
            assert isinstance(state, dict)


class _WouldLaunch(Exception):
    """Raised instead of starting ranks: the plan passed every check made before the launch."""


@BOUNDED
@given(which=st.sampled_from(("partition.npz", "partition.json", "halo_plan.npz", "halo_plan.json")),
       key=st.integers(0, 10**6), array=array_damage, tree=json_damage, raw=byte_damage, raw_bytes=st.booleans())
def test_train_plan_dir(base, monkeypatch, which, key, array, tree, raw, raw_bytes):
    from adaqp.runtime import run

    monkeypatch.setattr(run, "launch", lambda *a, **k: (_ for _ in ()).throw(_WouldLaunch()))
    with tempfile.TemporaryDirectory() as tmp:
        d = _copy(base, "part", tmp)
        path = d / which
        if raw_bytes:
            damage_bytes(path, raw)
        elif which.endswith(".npz"):
            with np.load(path) as z:
                names = sorted(z.files)
            mutate_npz(path, names[key % len(names)], *array)
        else:
            mutate_json_file(path, tree)
        try:
            assert_refused_or_ok(["train", base / "g.npz", "--nprocs", "2", "--epochs", "1", "--plan-dir", d])
        except _WouldLaunch:
            pass
