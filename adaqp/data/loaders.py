"""Loaders for on-disk dataset layouts: GraphSAINT, OGB (raw CSV), PyG ``Data`` and plain ``.npz``.

Every malformed input becomes one :class:`AdaqpInputError` line naming the file and the problem;
parser exceptions from numpy, scipy, pandas, gzip or json never escape. Conventions:

* GraphSAINT ``adj_full.npz`` is symmetric already; row ``i`` lists the neighbours ``j`` and is
  read as the edges ``j -> i`` without symmetrising.
* OGB stores each undirected edge once (ogbn-products) and citation edges one way
  (ogbn-arxiv); :func:`load_ogb` stores both directions, as full-graph GNN training does.
* Node ids absent from the labels get ``-1`` (single-label) or an all-zero row (multi-label).
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from adaqp.data.generators import random_split
from adaqp.errors import AdaqpInputError, require
from adaqp.graph import Graph, csr_from_edges
from adaqp.io import read_npz

# What numpy, scipy, pandas, gzip and json raise on bad bytes (gzip's errors are OSError/EOFError).
_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OSError, EOFError, zipfile.BadZipFile, zlib.error)
_ROWS = 1 << 16
_MASKS = ("train_mask", "val_mask", "test_mask")


@contextmanager
def _reading(path: Path):
    """Turn any parser failure while reading ``path`` into one AdaqpInputError line."""
    if not path.exists():
        raise AdaqpInputError(f"file not found: {path}")
    try:
        yield
    except AdaqpInputError:
        raise
    except _PARSE_ERRORS as e:  # keep the first line of the parser's message: it says where
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise AdaqpInputError(f"cannot read {path}: {type(e).__name__}: {first}") from None


@contextmanager
def _building(source):
    """Prefix Graph validation errors with the dataset they came from."""
    try:
        yield
    except AdaqpInputError as e:
        raise AdaqpInputError(f"{source}: {e}") from None


def _check_features(x: np.ndarray, where) -> np.ndarray:
    require(x.ndim == 2 and x.shape[0] >= 1,
            f"{where}: features must be a 2-D [N, F] array with N >= 1, got shape {list(x.shape)}")
    require(x.dtype.kind in "biuf", f"{where}: features must be numeric, got dtype {x.dtype}")
    x = np.asarray(x, dtype=np.float32)
    for s in range(0, x.shape[0], _ROWS):  # chunked: no N x F bool temporary
        require(bool(np.isfinite(x[s:s + _ROWS]).all()), f"{where}: features contain NaN or Inf")
    return x


def _ids(values, n: int, where) -> np.ndarray:
    """Node ids as int64, checked to be integers in ``[0, n)``."""
    a = np.asarray(values)
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    require(a.ndim == 1 and a.dtype.kind in "iu", f"{where}: node ids must be a flat list of integers")
    lo, hi = int(a.min()), int(a.max())
    require(lo >= 0 and hi < n, f"{where}: node id out of range [0, {n}) (min {lo}, max {hi})")
    return a.astype(np.int64, copy=False)


def _mask(ids: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(ids, minlength=n) > 0


def _multilabel(y: np.ndarray, where) -> np.ndarray:
    require(y.dtype.kind in "biuf" and bool(np.isin(y, (0, 1)).all()), f"{where}: multi-label targets must be 0/1")
    return y.astype(np.float32)


# ---- GraphSAINT --------------------------------------------------------------------------------
def load_graphsaint(dirpath: str | os.PathLike) -> Graph:
    """GraphSAINT layout: ``adj_full.npz``, ``feats.npy``, ``class_map.json``, ``role.json``."""
    d = Path(dirpath)
    require(d.is_dir(), f"not a directory: {d}")
    feats_path = d / "feats.npy"
    with _reading(feats_path):
        x = _check_features(np.load(feats_path, allow_pickle=False), feats_path)
    n = x.shape[0]
    src, dst = _saint_adjacency(d / "adj_full.npz", n)
    labels = _saint_labels(d / "class_map.json", n)
    masks = _saint_roles(d / "role.json", n)
    indptr, indices = csr_from_edges(src, dst, n)
    with _building(d):
        return Graph(d.name, indptr, indices, x, labels, *masks)


def _saint_adjacency(path: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    import scipy.sparse as sp

    with _reading(path):
        # np.load takes a non-zip file for a pickle and says so; name the real problem instead.
        require(zipfile.is_zipfile(path), f"{path}: not a .npz (zip) archive")
        adj = sp.load_npz(path).tocsr()  # scipy reads with allow_pickle=False
    require(adj.shape == (n, n), f"{path}: adjacency is {adj.shape[0]}x{adj.shape[1]} but feats.npy has {n} rows")
    # scipy does not bounds-check indices on load; an out-of-range id would alias another edge.
    src = _ids(adj.indices, n, path)
    return src, np.repeat(np.arange(n, dtype=np.int64), np.diff(adj.indptr))


def _read_json(path: Path):
    with _reading(path), open(path, "rb") as f:
        return json.load(f)


def _saint_labels(path: Path, n: int) -> np.ndarray:
    cm = _read_json(path)
    require(isinstance(cm, dict) and cm, f"{path}: expected a non-empty object mapping node id -> class")
    bad = next((k for k in cm if not k.strip().lstrip("-").isdigit()), None)
    require(bad is None, f"{path}: node ids must be integer strings, got {bad!r}")
    keys = _ids(np.fromiter((int(k) for k in cm), dtype=np.int64, count=len(cm)), n, path)
    try:
        vals = np.asarray(list(cm.values()))
    except ValueError:  # ragged lists
        raise AdaqpInputError(f"{path}: multi-label values must be lists of equal length") from None
    if vals.ndim == 2:
        labels = np.zeros((n, vals.shape[1]), dtype=np.float32)
        labels[keys] = _multilabel(vals, path)
        return labels
    require(vals.ndim == 1 and vals.dtype.kind in "iu" and int(vals.min()) >= 0,
            f"{path}: class values must be integers >= 0 or lists of 0/1")
    labels = np.full(n, -1, dtype=np.int64)
    labels[keys] = vals
    return labels


def _saint_roles(path: Path, n: int):
    role = _read_json(path)
    require(isinstance(role, dict), f"{path}: expected an object with keys tr, va, te")
    missing = [k for k in ("tr", "va", "te") if k not in role]
    require(not missing, f"{path}: missing key(s) {', '.join(missing)}")
    with _reading(path):
        return tuple(_mask(_ids(role[k], n, f"{path} [{k}]"), n) for k in ("tr", "va", "te"))


# ---- OGB ----------------------------------------------------------------------------------------
def load_ogb(dirpath: str | os.PathLike) -> Graph:
    """OGB node-property raw layout (``raw/*.csv.gz``, ``split/[<name>/]{train,valid,test}.csv.gz``).

    Edges are stored both ways; a ``nan`` label becomes ``-1``; several label columns = multi-label.
    """
    d = Path(dirpath)
    require(d.is_dir(), f"not a directory: {d}")
    feat_path = d / "raw" / "node-feat.csv.gz"
    x = _check_features(_csv(feat_path, np.float32), feat_path)
    n = x.shape[0]
    edge_path = d / "raw" / "edge.csv.gz"
    edges = _csv(edge_path, np.int64, empty_ok=True, columns=2)
    src, dst = _ids(edges[:, 0], n, edge_path), _ids(edges[:, 1], n, edge_path)
    labels = _ogb_labels(d / "raw" / "node-label.csv.gz", n)
    split = _ogb_split_dir(d / "split")
    parts = (split / f"{part}.csv.gz" for part in ("train", "valid", "test"))
    masks = [_mask(_ids(_csv(p, np.int64, empty_ok=True, columns=1)[:, 0], n, p), n) for p in parts]
    del edges
    indptr, indices = csr_from_edges(src, dst, n, make_undirected=True)
    with _building(d):
        return Graph(d.name, indptr, indices, x, labels, *masks)


def _csv(path: Path, dtype, *, empty_ok: bool = False, columns: int | None = None) -> np.ndarray:
    """A headerless CSV (gzip by extension) as a 2-D array; an empty file is ``[0, columns]``."""
    import pandas as pd

    with _reading(path):
        try:
            frame = pd.read_csv(path, header=None, dtype=dtype, engine="c")
        except pd.errors.EmptyDataError:
            require(empty_ok, f"{path}: file is empty")
            return np.zeros((0, columns or 1), dtype=dtype)
        a = frame.to_numpy(dtype=dtype)
    if columns is not None:
        require(a.shape[1] == columns, f"{path}: expected {columns} column(s), got {a.shape[1]}")
    return a


def _ogb_labels(path: Path, n: int) -> np.ndarray:
    y = _csv(path, np.float64)
    require(y.shape[0] == n, f"{path}: {y.shape[0]} label rows but node-feat.csv.gz has {n} rows")
    if y.shape[1] > 1:
        return _multilabel(np.nan_to_num(y, nan=0.0), path)
    return _nan_labels(y[:, 0], path)


def _nan_labels(y: np.ndarray, where) -> np.ndarray:
    """Float class ids with ``nan`` for unlabelled (OGB's convention) as int64 with ``-1``."""
    known = ~np.isnan(y)
    require(bool((y[known] == np.floor(y[known])).all()) and bool((y[known] >= 0).all()),
            f"{where}: labels must be integer class ids >= 0 (nan = unlabelled)")
    return np.where(known, y, -1).astype(np.int64)


def _ogb_split_dir(split: Path) -> Path:
    if (split / "train.csv.gz").exists():
        return split
    require(split.is_dir(), f"split folder not found: {split}")
    subs = sorted(p for p in split.iterdir() if p.is_dir())
    require(len(subs) == 1, f"{split}: expected train.csv.gz or exactly one split subfolder, found "
            f"{', '.join(p.name for p in subs) or 'none'}")
    return subs[0]


# ---- PyG Data -----------------------------------------------------------------------------------
def _numpy(t) -> np.ndarray | None:
    if hasattr(t, "detach"):  # a torch tensor on any device; torch itself is never imported here
        t = t.detach().cpu().numpy()
    return None if t is None else np.asarray(t)


def from_pyg(data, name: str = "pyg", *, make_undirected: bool = False, seed: int = 0) -> Graph:
    """Convert a ``torch_geometric.data.Data``-like object: duck typed (``edge_index``, ``x``, ``y``,
    optional ``train_mask``/``val_mask``/``test_mask``), so PyG need not be installed. ``y`` of shape
    ``[N, 1]`` is squeezed; ``[N, C]`` with ``C > 1`` is multi-label. A mask may be
    boolean ``[N]`` (a 2-D mask, as some PyG datasets carry several splits, uses column 0) or an
    integer index list. With no mask at all, labelled nodes get the random 50/25/25 split of
    :func:`adaqp.data.generators.random_split` (``seed``); if only some masks exist the others are empty.
    """
    where = f"PyG data {name!r}"
    x = _numpy(getattr(data, "x", None))
    y = _numpy(getattr(data, "y", None))
    ei = _numpy(getattr(data, "edge_index", None))
    require(x is not None and y is not None and ei is not None, f"{where}: needs x, y and edge_index")
    x = _check_features(x, where)
    n = x.shape[0]
    labels = _pyg_labels(y, n, where)
    require(ei.ndim == 2 and ei.shape[0] == 2, f"{where}: edge_index must have shape [2, E], got {list(ei.shape)}")
    src, dst = _ids(ei[0], n, f"{where} edge_index"), _ids(ei[1], n, f"{where} edge_index")
    raw = {k: _numpy(getattr(data, k, None)) for k in _MASKS}
    if all(v is None for v in raw.values()):
        labelled = np.ones(n, bool) if labels.ndim == 2 else labels >= 0
        masks = random_split(n, np.random.default_rng(seed), candidates=np.flatnonzero(labelled))
    else:
        masks = tuple(_pyg_mask(raw[k], n, f"{where} {k}") for k in raw)
    indptr, indices = csr_from_edges(src, dst, n, make_undirected=make_undirected)
    with _building(where):
        return Graph(name, indptr, indices, x, labels, *masks)


def _pyg_labels(y: np.ndarray, n: int, where) -> np.ndarray:
    require(y.shape[:1] == (n,) and y.ndim in (1, 2), f"{where}: y must have shape [{n}] or [{n}, C], got {list(y.shape)}")
    if y.ndim == 2 and y.shape[1] > 1:
        return _multilabel(y, where)
    y = y.reshape(n)
    if y.dtype.kind == "f":  # OGB-style float labels (PygNodePropPredDataset)
        return _nan_labels(y, where)
    require(y.dtype.kind in "iu", f"{where}: y must hold integer class ids, got dtype {y.dtype}")
    y = y.astype(np.int64)
    require(int(y.min()) >= -1, f"{where}: class ids must be >= -1")
    return y


def _pyg_mask(m: np.ndarray | None, n: int, where) -> np.ndarray:
    if m is None:
        return np.zeros(n, dtype=bool)
    if m.dtype == bool:
        m = m[:, 0] if m.ndim == 2 else m
        require(m.shape == (n,), f"{where}: boolean mask must have shape [{n}], got {list(m.shape)}")
        return m
    return _mask(_ids(m.reshape(-1), n, where), n)


# ---- plain .npz ---------------------------------------------------------------------------------
_EDGE_KEYS = ("edge_index", "features", "labels") + _MASKS
_CSR_KEYS = ("indptr", "indices", "features", "labels") + _MASKS


def load_npz_dataset(path: str | os.PathLike) -> Graph:
    """A ``.npz`` with ``edge_index`` [2, E] + features/labels/masks, or one written by ``Graph.save``."""
    path = Path(path)
    z = read_npz(path)
    name = str(z["name"]) if "name" in z and z["name"].ndim == 0 else path.stem
    keys = _CSR_KEYS if "indptr" in z else _EDGE_KEYS
    missing = [k for k in keys if k not in z]
    require(not missing, f"{path} lacks array(s) {', '.join(missing)}")
    features = _check_features(z["features"], path)
    labels = _multilabel(z["labels"], path) if z["labels"].ndim == 2 else z["labels"]
    require(labels.ndim == 2 or labels.dtype.kind in "iu", f"{path}: 1-D labels must be integers, got dtype {labels.dtype}")
    # Graph would cast silently (float ids truncated, any nonzero mask True): check dtypes here.
    for k in (("indptr", "indices") if "indptr" in z else ("edge_index",)) + _MASKS:
        want, kinds = ("boolean", "b") if k.endswith("mask") else ("integers", "iu")
        require(z[k].dtype.kind in kinds, f"{path}: {k} must be {want}, got dtype {z[k].dtype}")
    masks = tuple(z[k] for k in _MASKS)
    with _building(path):
        if "indptr" in z:
            return Graph(name, z["indptr"], z["indices"], features, labels, *masks)
        return Graph.from_edge_index(name, z["edge_index"], features, labels, *masks)
