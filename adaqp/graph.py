"""The :class:`Graph` type: CSR adjacency, features, labels and the train/val/test split.

Convention: the CSR is indexed by *destination*. Row ``v`` (``indices[indptr[v]:indptr[v+1]]``)
lists the sources ``u`` of the directed edges ``u -> v``, i.e. the in-neighbours whose messages
``v`` aggregates. Undirected graphs store both directions. Self loops are not stored; the models
add them where their normalisation needs them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from adaqp.errors import require
from adaqp.io import read_npz, write_npz

_CHUNK_ROWS = 1 << 16  # finite-check features in chunks: no N x F bool temporary


@dataclass(frozen=True, eq=False)
class Graph:
    """A node-classification graph, validated on construction.

    ``labels`` is int64 ``[N]`` (``-1`` = unlabelled) for single-label data, or float32
    ``[N, C]`` of 0/1 for multi-label data (GraphSAINT Yelp / AmazonProducts).
    """

    name: str
    indptr: np.ndarray
    indices: np.ndarray
    features: np.ndarray
    labels: np.ndarray
    train_mask: np.ndarray
    val_mask: np.ndarray
    test_mask: np.ndarray

    def __post_init__(self) -> None:
        fix = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731  (frozen dataclass)
        fix("indptr", np.ascontiguousarray(self.indptr, dtype=np.int64))
        fix("indices", np.ascontiguousarray(self.indices, dtype=np.int64))
        if self.features.dtype != np.float32:
            fix("features", np.ascontiguousarray(self.features, dtype=np.float32))
        if self.labels.ndim == 1:
            fix("labels", np.ascontiguousarray(self.labels, dtype=np.int64))
        else:
            fix("labels", np.ascontiguousarray(self.labels, dtype=np.float32))
        for m in ("train_mask", "val_mask", "test_mask"):
            fix(m, np.ascontiguousarray(getattr(self, m), dtype=bool))
        self._validate()

    def _validate(self) -> None:
        n = self.indptr.shape[0] - 1
        where = f"graph {self.name!r}"
        require(self.indptr.ndim == 1 and n >= 1, f"{where}: empty graph (no nodes)")
        require(self.indptr[0] == 0 and self.indptr[-1] == self.indices.shape[0],
                f"{where}: indptr must start at 0 and end at len(indices)")
        require(bool(np.all(np.diff(self.indptr) >= 0)), f"{where}: indptr is not non-decreasing")
        require(self.indices.ndim == 1, f"{where}: indices must be 1-D")
        if self.indices.size:
            lo, hi = int(self.indices.min()), int(self.indices.max())
            require(lo >= 0 and hi < n, f"{where}: node id out of range [0, {n}) in edges (min {lo}, max {hi})")
        require(self.features.ndim == 2 and self.features.shape[0] == n,
                f"{where}: features must have shape [{n}, F], got {list(self.features.shape)}")
        for s in range(0, n, _CHUNK_ROWS):
            require(bool(np.isfinite(self.features[s:s + _CHUNK_ROWS]).all()),
                    f"{where}: features contain NaN or Inf")
        require(self.labels.shape[0] == n and self.labels.ndim in (1, 2),
                f"{where}: labels must have shape [{n}] or [{n}, C], got {list(self.labels.shape)}")
        if self.labels.ndim == 1 and n:
            require(int(self.labels.min()) >= -1, f"{where}: labels must be >= -1 (-1 = unlabelled)")
        for m in ("train_mask", "val_mask", "test_mask"):
            require(getattr(self, m).shape == (n,), f"{where}: {m} must have shape [{n}]")

    # ---- sizes -------------------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        return self.indptr.shape[0] - 1

    @property
    def num_edges(self) -> int:
        """Number of directed edges stored (an undirected edge counts twice)."""
        return int(self.indices.shape[0])

    @property
    def num_features(self) -> int:
        return int(self.features.shape[1])

    @property
    def multilabel(self) -> bool:
        return self.labels.ndim == 2

    @cached_property
    def num_classes(self) -> int:
        if self.multilabel:
            return int(self.labels.shape[1])
        return int(self.labels.max()) + 1 if self.labels.size else 0

    @cached_property
    def in_degree(self) -> np.ndarray:
        return np.diff(self.indptr)

    @cached_property
    def out_degree(self) -> np.ndarray:
        return np.bincount(self.indices, minlength=self.num_nodes).astype(np.int64)

    def edge_index(self) -> np.ndarray:
        """``[2, E]`` int64 (source, destination) pairs in CSR order."""
        dst = np.repeat(np.arange(self.num_nodes, dtype=np.int64), self.in_degree)
        return np.stack([self.indices, dst])

    # ---- construction ------------------------------------------------------------------
    @classmethod
    def from_edge_index(cls, name: str, edge_index: np.ndarray, features: np.ndarray,
                        labels: np.ndarray, train_mask: np.ndarray, val_mask: np.ndarray,
                        test_mask: np.ndarray, *, make_undirected: bool = False) -> "Graph":
        """Build from ``[2, E]`` (source, destination) pairs: drops self loops and duplicates."""
        ei = np.asarray(edge_index)
        n = int(np.asarray(features).shape[0]) if np.ndim(features) == 2 else -1
        require(ei.ndim == 2 and ei.shape[0] == 2, f"graph {name!r}: edge_index must have shape [2, E]")
        require(n >= 1, f"graph {name!r}: empty graph (no nodes)")
        if ei.size:
            require(np.issubdtype(ei.dtype, np.integer), f"graph {name!r}: edge ids must be integers")
            lo, hi = int(ei.min()), int(ei.max())
            require(lo >= 0 and hi < n, f"graph {name!r}: node id out of range [0, {n}) in edges (min {lo}, max {hi})")
        indptr, indices = csr_from_edges(ei[0], ei[1], n, make_undirected=make_undirected)
        return cls(name, indptr, indices, features, labels, train_mask, val_mask, test_mask)

    # ---- persistence -------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        return write_npz(path, {
            "format": np.array("adaqp-graph-v1"), "name": np.array(self.name),
            "indptr": self.indptr, "indices": self.indices, "features": self.features,
            "labels": self.labels, "train_mask": self.train_mask, "val_mask": self.val_mask,
            "test_mask": self.test_mask,
        })

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Graph":
        keys = ("indptr", "indices", "features", "labels", "train_mask", "val_mask", "test_mask")
        z = read_npz(path, required=keys)
        name = str(z["name"]) if "name" in z else Path(path).stem
        return cls(name, *(z[k] for k in keys))

    def fingerprint(self) -> str:
        """A short hash of the structure: a saved partition is only valid for the same graph."""
        import hashlib

        h = hashlib.sha256()
        h.update(np.int64(self.num_nodes).tobytes())
        h.update(self.indptr.tobytes())
        h.update(self.indices.tobytes())
        return h.hexdigest()[:16]


def csr_from_edges(src: np.ndarray, dst: np.ndarray, n: int, *,
                   make_undirected: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Destination-indexed CSR from edge lists: sorted, self loops and duplicates removed."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    if make_undirected:
        src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
    keep = src != dst
    src, dst = src[keep], dst[keep]
    # One int64 key per edge (dst major): sort + adjacent-difference dedups without a [2, E]
    # lexsort. (np.unique on 20 M keys took ~23 s here against 0.13 s for the in-place sort.)
    key = dst * n + src
    key.sort()
    if key.size:
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    dst, src = np.divmod(key, n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(dst, minlength=n), out=indptr[1:])
    return indptr, src.astype(np.int64, copy=False)

