"""Synthetic graphs: a contextual stochastic block model and R-MAT (Graph500 Kronecker).

Both generators are deterministic functions of their arguments (``seed`` feeds one
``numpy.random.SeedSequence``; labels, edges and features draw from separate child streams, so
changing the feature width does not change the edges). Edges are drawn in fixed-size chunks
into preallocated int64 arrays and turned into the destination-indexed CSR by
:func:`adaqp.graph.csr_from_edges`; nothing loops over edges in Python. 1 M nodes and 20 M
directed edges take ~25 s and ~1.8 GiB peak RSS on 2 cores (most of the time is the dedup).

Split convention (both generators, and :func:`adaqp.data.loaders.from_pyg` when a ``Data``
object carries no masks): a uniformly random 50 % / 25 % / 25 % train / val / test split
(:data:`DEFAULT_SPLIT`), ``floor`` for train and val, the rest test.
"""

from __future__ import annotations

import math

import numpy as np

from adaqp.errors import require
from adaqp.graph import Graph, csr_from_edges

DEFAULT_SPLIT = (0.5, 0.25, 0.25)
_EDGE_CHUNK = 1 << 22  # edges per chunk: bounds the float/int temporaries to ~100 MB
_FEAT_CHUNK = 1 << 16  # feature rows per chunk (8 MiB at 128 float32 columns)


# ---- shared pieces (also used by the loaders) ------------------------------------------------
def random_split(n: int, rng: np.random.Generator, fractions=DEFAULT_SPLIT,
                 candidates: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean train/val/test masks over ``candidates`` (default: all ``n`` nodes)."""
    pool = np.arange(n, dtype=np.int64) if candidates is None else np.asarray(candidates, np.int64)
    order = rng.permutation(pool)
    n_train = int(math.floor(fractions[0] * order.size))
    n_val = int(math.floor(fractions[1] * order.size))
    masks = []
    for part in (order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]):
        m = np.zeros(n, dtype=bool)
        m[part] = True
        masks.append(m)
    return masks[0], masks[1], masks[2]


def _balanced_classes(n: int, classes: int, rng: np.random.Generator):
    """Random balanced labels; ``members`` lists the nodes class by class (for sampling)."""
    sizes = np.full(classes, n // classes, dtype=np.int64)
    sizes[: n % classes] += 1
    start = np.zeros(classes + 1, dtype=np.int64)
    np.cumsum(sizes, out=start[1:])
    members = rng.permutation(n).astype(np.int64)
    labels = np.empty(n, dtype=np.int64)
    labels[members] = np.repeat(np.arange(classes, dtype=np.int64), sizes)
    return labels, members, start, sizes


def _class_features(labels: np.ndarray, classes: int, feat: int, signal: float,
                    rng: np.random.Generator) -> np.ndarray:
    """``signal`` x (random unit class centroid) + N(0, 1) noise, float32, filled in chunks.

    With the default signal of 2 and 16 classes a linear model on the features alone reaches
    roughly half accuracy, while averaging ~20 mostly same-class neighbours cuts the noise by
    ~4x: the graph is what makes the task easy.
    """
    centroids = rng.standard_normal((classes, feat))
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    centroids = (signal * centroids).astype(np.float32)
    out = np.empty((labels.shape[0], feat), dtype=np.float32)
    for s in range(0, labels.shape[0], _FEAT_CHUNK):
        block = out[s:s + _FEAT_CHUNK]
        rng.standard_normal(dtype=np.float32, out=block)
        block += centroids[labels[s:s + _FEAT_CHUNK]]
    return out


def _streams(seed: int, name: str) -> list[np.random.Generator]:
    require(isinstance(seed, (int, np.integer)) and seed >= 0, f"{name}: seed must be an integer >= 0, got {seed!r}")
    return [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(3)]


def _positive_int(where: str, name: str, value) -> None:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1
    require(ok, f"{where}: {name} must be an integer >= 1, got {value!r}")


def _check_common(where: str, classes: int, feat: int, signal: float) -> None:
    _positive_int(where, "classes", classes)
    _positive_int(where, "feat", feat)
    require(math.isfinite(signal) and signal >= 0, f"{where}: signal must be finite and >= 0, got {signal}")


# ---- contextual stochastic block model -------------------------------------------------------
def sbm(nodes: int, classes: int, feat: int, deg: float = 20.0, homophily: float = 0.8,
        seed: int = 0, signal: float = 2.0, p_in: float | None = None,
        p_out: float | None = None) -> Graph:
    """Contextual SBM: balanced classes, class-Gaussian features, undirected edges.

    ``nodes * deg / 2`` undirected edges are drawn (stored both ways, so the mean in-degree is
    ``deg`` less the few self loops and duplicates that are dropped). Each edge starts at a
    uniform node; with probability ``homophily`` it ends at a uniform node of the same class,
    otherwise at a uniform node of another class. ``p_in``/``p_out`` (given together) set the
    classic SBM pair probabilities instead and override ``deg`` and ``homophily``. Features:
    see :func:`_class_features`; split: :data:`DEFAULT_SPLIT`.
    """
    where = "sbm"
    _positive_int(where, "nodes", nodes)
    _check_common(where, classes, feat, signal)
    require(classes <= nodes, f"{where}: classes ({classes}) must be <= nodes ({nodes})")
    r_split, r_edges, r_feat = _streams(seed, where)
    labels, members, start, sizes = _balanced_classes(nodes, classes, r_split)
    if p_in is not None or p_out is not None:
        deg, homophily = _from_pair_probabilities(nodes, sizes, p_in, p_out)
    require(math.isfinite(deg) and deg >= 0, f"{where}: deg must be finite and >= 0, got {deg}")
    require(0.0 <= homophily <= 1.0, f"{where}: homophily must be in [0, 1], got {homophily}")
    src, dst = _sbm_edges(nodes, classes, labels, members, start, sizes,
                          int(round(nodes * deg / 2)), homophily, r_edges)
    indptr, indices = csr_from_edges(src, dst, nodes, make_undirected=True)
    del src, dst
    features = _class_features(labels, classes, feat, signal, r_feat)
    masks = random_split(nodes, r_split)
    return Graph(f"sbm-n{nodes}-c{classes}", indptr, indices, features, labels, *masks)


def _from_pair_probabilities(n, sizes, p_in, p_out) -> tuple[float, float]:
    """Expected degree and intra-class edge fraction of a Bernoulli SBM with ``p_in``/``p_out``."""
    require(p_in is not None and p_out is not None, "sbm: give p_in and p_out together")
    require(0 <= p_in <= 1 and 0 <= p_out <= 1, f"sbm: p_in and p_out must be in [0, 1], got {p_in}, {p_out}")
    intra_pairs = float(np.sum(sizes * (sizes - 1))) / 2
    inter_pairs = (float(n) * n - float(np.sum(sizes * sizes))) / 2
    intra, inter = p_in * intra_pairs, p_out * inter_pairs
    total = intra + inter
    return 2 * total / n, (intra / total if total > 0 else 1.0)


def _sbm_edges(n, classes, labels, members, start, sizes, m, homophily, rng):
    src = np.empty(m, dtype=np.int64)
    dst = np.empty(m, dtype=np.int64)
    for s in range(0, m, _EDGE_CHUNK):
        k = min(_EDGE_CHUNK, m - s)
        u = rng.integers(0, n, size=k, dtype=np.int64)
        cls = labels[u]
        if classes > 1:
            # Another class uniformly: shift by 1..C-1 (classes are balanced, so this is a
            # uniform draw over all other-class nodes up to the +-1 size difference).
            inter = rng.random(k, dtype=np.float32) >= homophily
            shift = rng.integers(1, classes, size=k, dtype=np.int64)
            cls = np.where(inter, (cls + shift) % classes, cls)
        size = sizes[cls]
        pos = np.minimum((rng.random(k) * size).astype(np.int64), size - 1)
        src[s:s + k] = u
        dst[s:s + k] = members[start[cls] + pos]
    return src, dst


# ---- R-MAT / Graph500 Kronecker --------------------------------------------------------------
def rmat(scale: int, edgefactor: int = 16, feat: int = 128, classes: int = 16, seed: int = 0,
         a: float = 0.57, b: float = 0.19, c: float = 0.19, signal: float = 2.0) -> Graph:
    """R-MAT graph with the Graph500 parameters: ``2**scale`` nodes, skewed degrees.

    ``edgefactor * 2**scale`` edges are drawn bit by bit (at each of the ``scale`` levels one
    uniform picks the quadrant a / b / c / d = 1-a-b-c), node ids are randomly permuted as in
    Graph500 (so high degree is not tied to low ids), then the graph is symmetrised and self
    loops and duplicates removed. Labels are random and balanced and the features are class
    Gaussians as in :func:`sbm`: the structure carries no label signal (homophily ~ 1/C); the
    graph is meant for systems measurements on a skewed degree distribution. Split:
    :data:`DEFAULT_SPLIT`.
    """
    where = "rmat"
    require(isinstance(scale, (int, np.integer)) and 1 <= scale <= 30,
            f"{where}: scale must be an integer in 1..30, got {scale!r}")
    _positive_int(where, "edgefactor", edgefactor)
    _check_common(where, classes, feat, signal)
    require(min(a, b, c) >= 0 and a + b + c <= 1 + 1e-9,
            f"{where}: a, b, c must be >= 0 with a + b + c <= 1, got {a}, {b}, {c}")
    n = 1 << int(scale)
    require(classes <= n, f"{where}: classes ({classes}) must be <= 2**scale ({n})")
    # edgefactor * N draws among the N * N ordered pairs: more than N per node can only repeat pairs
    require(int(edgefactor) <= n, f"{where}: edgefactor ({edgefactor}) must be <= 2**scale ({n})")
    r_split, r_edges, r_feat = _streams(seed, where)
    src, dst = _rmat_edges(int(scale), int(edgefactor) * n, a, b, c, r_edges)
    indptr, indices = csr_from_edges(src, dst, n, make_undirected=True)
    del src, dst
    labels, _, _, _ = _balanced_classes(n, classes, r_split)
    features = _class_features(labels, classes, feat, signal, r_feat)
    masks = random_split(n, r_split)
    return Graph(f"rmat-s{scale}-e{edgefactor}", indptr, indices, features, labels, *masks)


def _rmat_edges(scale, m, a, b, c, rng):
    """Kronecker edges: one uniform per level picks the (row bit, column bit) quadrant."""
    perm = rng.permutation(1 << scale).astype(np.int64)
    ab, abc = np.float32(a + b), np.float32(a + b + c)
    a32 = np.float32(a)
    src = np.empty(m, dtype=np.int64)
    dst = np.empty(m, dtype=np.int64)
    u = np.empty(min(m, _EDGE_CHUNK), dtype=np.float32)
    for s in range(0, m, _EDGE_CHUNK):
        k = min(_EDGE_CHUNK, m - s)
        i, j, uk = src[s:s + k], dst[s:s + k], u[:k]
        i.fill(0)
        j.fill(0)
        for level in range(scale):
            rng.random(dtype=np.float32, out=uk)
            row = uk >= ab                      # quadrants c, d
            col = (uk >= a32) & (uk < ab) | (uk >= abc)   # quadrants b, d
            i |= row.astype(np.int64) << level
            j |= col.astype(np.int64) << level
        # Graph500 relabels vertices with a random permutation.
        i[:] = perm[i]
        j[:] = perm[j]
    return src, dst
