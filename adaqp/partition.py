"""Partitioning a graph into one part per rank, and the statistics that part layout implies.

A :class:`Partition` is only an owner array (node -> part) plus provenance; everything derived
from it (edge cut, halo sizes, rows per sender/receiver pair) is recomputed from the graph by
:func:`partition_stats`, so a saved partition can never disagree with its statistics.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from adaqp.errors import AdaqpInputError, require
from adaqp.graph import Graph
from adaqp.io import read_json, read_npz, write_json, write_npz

FORMAT = "adaqp-partition-v1"
METHODS = ("metis", "random", "contiguous")
BALANCES = ("nodes", "edges")
_NPZ, _JSON = "partition.npz", "partition.json"


@dataclass(frozen=True, eq=False)
class Partition:
    """Owner of every node: ``parts[v]`` in ``[0, num_parts)``; every part is non-empty."""

    parts: np.ndarray
    num_parts: int
    method: str
    graph_fingerprint: str
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", np.ascontiguousarray(self.parts, dtype=np.int64))
        object.__setattr__(self, "num_parts", int(self.num_parts))
        object.__setattr__(self, "seed", int(self.seed))
        p, parts = self.num_parts, self.parts
        require(parts.ndim == 1 and parts.size >= 1, "partition: parts must be a non-empty 1-D array")
        require(p >= 1, f"partition: num_parts must be >= 1, got {p}")
        lo, hi = int(parts.min()), int(parts.max())
        require(lo >= 0 and hi < p, f"partition: part ids must lie in [0, {p}), got min {lo}, max {hi}")
        empty = np.flatnonzero(np.bincount(parts, minlength=p) == 0)
        require(empty.size == 0, f"partition: part(s) {empty.tolist()[:10]} of {p} own no node")

    @property
    def num_nodes(self) -> int:
        return int(self.parts.shape[0])

    def part_sizes(self) -> np.ndarray:
        return np.bincount(self.parts, minlength=self.num_parts).astype(np.int64)

    def check_graph(self, graph: Graph) -> None:
        """Refuse a graph of another size (cheap; the fingerprint is checked on load)."""
        require(graph.num_nodes == self.num_nodes,
                f"partition has {self.num_nodes} nodes but graph {graph.name!r} has {graph.num_nodes}")


@dataclass(frozen=True, eq=False)
class PartitionStats:
    """Per-part counts (arrays of length P) and whole-partition totals.

    ``cut_edges[p]`` counts the directed cut edges whose *destination* is in ``p`` (the edges
    it aggregates from halo rows); summed over parts it equals ``edge_cut``.
    """

    inner: np.ndarray
    central: np.ndarray
    marginal: np.ndarray
    halo_in: np.ndarray
    halo_out: np.ndarray
    local_edges: np.ndarray
    cut_edges: np.ndarray
    edge_cut: int
    pair_rows: np.ndarray
    replication_factor: float

    def headline(self) -> dict:
        """JSON-friendly summary (lists, ints and floats only)."""
        d = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}
        d["edge_cut"] = int(self.edge_cut)
        d["replication_factor"] = float(self.replication_factor)
        return d


# ---- shared vectorised helpers (also used by adaqp.halo) -----------------------------------
def edge_endpoints(graph: Graph) -> tuple[np.ndarray, np.ndarray]:
    """(src, dst) of every directed edge in CSR (destination-major) order."""
    dst = np.repeat(np.arange(graph.num_nodes, dtype=np.int64), graph.in_degree)
    return graph.indices, dst


def unique_inverse(keys: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique ``keys`` (all in ``[0, bound)``) and each key's index into them.

    When ``bound`` is at most about the number of keys, a bitmap + prefix sum does this in
    O(E + bound) instead of a sort (5 bytes per slot, no more than the keys themselves take).
    """
    if bound <= max(1 << 24, keys.size) and bound < (1 << 31):
        seen = np.zeros(bound, dtype=bool)
        seen[keys] = True
        slot = np.cumsum(seen, dtype=np.int32)
        slot -= 1
        return np.flatnonzero(seen), slot[keys].astype(np.int64)
    uniq, inv = np.unique(keys, return_inverse=True)
    return uniq, inv.reshape(-1)


def cut_pairs(src: np.ndarray, dst: np.ndarray, parts: np.ndarray, num_parts: int):
    """Distinct (row u, receiving part r) pairs over the cut edges.

    Returns ``(cut, pair_u, pair_r, inverse)``: the cut-edge mask, each pair's u and r (sorted
    by u then r), and for each cut edge the index of its pair.
    """
    cut = parts[src] != parts[dst]
    key = src[cut] * num_parts + parts[dst[cut]]
    uniq, inv = unique_inverse(key, parts.shape[0] * num_parts)
    pair_u, pair_r = np.divmod(uniq, num_parts)
    return cut, pair_u, pair_r, inv


def offsets(counts: np.ndarray) -> np.ndarray:
    """``[0, c0, c0+c1, ...]``: CSR-style pointers from counts."""
    out = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def group_order(group: np.ndarray, num_groups: int) -> np.ndarray:
    """Stable argsort by a small group id; 16-bit keys let numpy use its linear radix sort."""
    dtype = np.int16 if num_groups < (1 << 15) else np.int64
    return np.argsort(group.astype(dtype, copy=False), kind="stable")


def pair_matrix(sender: np.ndarray, receiver: np.ndarray, num_parts: int) -> np.ndarray:
    flat = np.bincount(sender * num_parts + receiver, minlength=num_parts * num_parts)
    return flat.astype(np.int64).reshape(num_parts, num_parts)


def partition_stats(graph: Graph, partition: Partition) -> PartitionStats:
    """Edge cut, central/marginal split, halo sizes and per-pair rows, all vectorised."""
    partition.check_graph(graph)
    p, parts, n = partition.num_parts, partition.parts, graph.num_nodes
    src, dst = edge_endpoints(graph)
    cut, pair_u, pair_r, _ = cut_pairs(src, dst, parts, p)
    pair_rows = pair_matrix(parts[pair_u], pair_r, p)
    marginal_mask = np.zeros(n, dtype=bool)
    marginal_mask[dst[cut]] = True  # a node is marginal iff some in-edge crosses the cut
    dst_part = parts[dst]
    inner = partition.part_sizes()
    marginal = np.bincount(parts[marginal_mask], minlength=p).astype(np.int64)
    return PartitionStats(
        inner=inner, central=inner - marginal, marginal=marginal,
        halo_in=pair_rows.sum(axis=0), halo_out=pair_rows.sum(axis=1),
        local_edges=np.bincount(dst_part[~cut], minlength=p).astype(np.int64),
        cut_edges=np.bincount(dst_part[cut], minlength=p).astype(np.int64),
        edge_cut=int(cut.sum()), pair_rows=pair_rows,
        replication_factor=float((n + pair_rows.sum()) / n),
    )


# ---- partitioning methods ------------------------------------------------------------------
def _equal_chunks(n: int, num_parts: int) -> np.ndarray:
    # floor(i * P / N) gives chunk sizes differing by at most one, all >= 1 when P <= N.
    return (np.arange(n, dtype=np.int64) * num_parts) // n


def _metis(graph: Graph, num_parts: int, seed: int, balance: str) -> np.ndarray:
    import pymetis
    import scipy.sparse as sp

    n = graph.num_nodes
    # METIS wants a symmetric adjacency without self loops or duplicates; A + A^T (scipy sums
    # duplicates) is linear time. Graph construction already drops self loops; filter anyway.
    src, dst = edge_endpoints(graph)
    keep = src != dst
    if keep.all():  # the usual case: wrap the CSR as is (no COO round trip)
        a = sp.csr_matrix((np.ones(graph.num_edges, dtype=np.int32), graph.indices, graph.indptr),
                          shape=(n, n))
    else:
        a = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.int32), (dst[keep], src[keep])),
                          shape=(n, n))
    a.sum_duplicates()
    sym = (a + a.T).tocsr()
    idx = pymetis.zero_copy_dtype() if hasattr(pymetis, "zero_copy_dtype") else np.int64
    xadj = np.ascontiguousarray(sym.indptr, dtype=idx)
    adjncy = np.ascontiguousarray(sym.indices, dtype=idx)
    vweights = None
    if balance == "edges":  # weight = degree + 1 balances edges while keeping nodes non-zero
        vweights = np.ascontiguousarray(np.diff(sym.indptr) + 1, dtype=idx)
    options = pymetis.Options()
    options.seed = int(seed)
    if hasattr(pymetis, "CSRAdjacency"):  # pymetis >= 2025.2; older ones take xadj/adjncy
        graph_arg = {"adjacency": pymetis.CSRAdjacency(xadj, adjncy)}
    else:
        graph_arg = {"xadj": xadj, "adjncy": adjncy}
    _, membership = pymetis.part_graph(num_parts, **graph_arg, vweights=vweights, options=options)
    return _fill_empty_parts(np.asarray(membership, dtype=np.int64), num_parts)


def _fill_empty_parts(parts: np.ndarray, num_parts: int) -> np.ndarray:
    """METIS may leave parts empty on tiny graphs: move the highest-id node of the currently
    largest part into each empty part (deterministic, and only touches degenerate cases)."""
    sizes = np.bincount(parts, minlength=num_parts)
    for empty in np.flatnonzero(sizes == 0):
        donor = int(np.argmax(sizes))
        node = int(np.flatnonzero(parts == donor)[-1])
        parts[node] = empty
        sizes[donor] -= 1
        sizes[empty] += 1
    return parts


def partition_graph(graph: Graph, num_parts: int, method: str = "metis", seed: int = 0,
                    balance: str = "nodes") -> Partition:
    """Split ``graph`` into ``num_parts`` non-empty parts with ``method`` (see :data:`METHODS`).

    ``balance`` (METIS only): ``"nodes"`` balances node counts, ``"edges"`` weighs each node
    by degree + 1; random and contiguous always balance node counts."""
    n = graph.num_nodes
    require(isinstance(num_parts, (int, np.integer)) and not isinstance(num_parts, bool),
            f"number of parts must be an integer, got {num_parts!r}")
    num_parts = int(num_parts)
    require(num_parts >= 1, f"number of parts must be >= 1, got {num_parts}")
    require(num_parts <= n, f"cannot split {n} node(s) into {num_parts} non-empty parts")
    require(method in METHODS, f"unknown partition method {method!r}; choose from {', '.join(METHODS)}")
    require(balance in BALANCES, f"unknown balance {balance!r}; choose from {', '.join(BALANCES)}")
    if num_parts == 1:
        parts = np.zeros(n, dtype=np.int64)
    elif method == "contiguous":
        parts = _equal_chunks(n, num_parts)
    elif method == "random":
        parts = np.empty(n, dtype=np.int64)
        parts[np.random.default_rng(seed).permutation(n)] = _equal_chunks(n, num_parts)
    else:
        parts = _metis(graph, num_parts, seed, balance)
    return Partition(parts, num_parts, method, graph.fingerprint(), seed)


# ---- persistence ---------------------------------------------------------------------------
def save_partition(partition: Partition, dirpath: str | os.PathLike, graph: Graph | None = None,
                   *, stats: PartitionStats | None = None) -> Path:
    """Write ``partition.npz`` + ``partition.json`` (with headline stats when ``graph`` or
    ``stats`` is given). The JSON is written last, so it marks a complete pair."""
    d = Path(dirpath)
    if stats is None and graph is not None:
        stats = partition_stats(graph, partition)
    write_npz(d / _NPZ, {"format": np.array(FORMAT), "parts": partition.parts,
                         "graph_fingerprint": np.array(partition.graph_fingerprint)})
    write_json(d / _JSON, {
        "format": FORMAT, "num_parts": partition.num_parts, "method": partition.method,
        "seed": partition.seed, "graph_fingerprint": partition.graph_fingerprint,
        "num_nodes": partition.num_nodes, "stats": stats.headline() if stats else None,
    })
    return d


def load_partition(dirpath: str | os.PathLike, graph: Graph) -> Partition:
    """Read a partition saved by :func:`save_partition`, refusing one made for another graph."""
    d = Path(dirpath)
    require(d.is_dir(), f"no partition found: {d} is not a directory")
    meta = read_json(d / _JSON)
    arrays = read_npz(d / _NPZ, required=("parts", "graph_fingerprint"))
    try:
        fp, n, p = str(meta["graph_fingerprint"]), int(meta["num_nodes"]), int(meta["num_parts"])
        method, seed = str(meta["method"]), int(meta["seed"])
    except (KeyError, TypeError, ValueError, OverflowError) as e:  # OverflowError: int(inf)
        raise AdaqpInputError(f"corrupt partition metadata in {d}: {e!r}") from None
    require(meta.get("format") == FORMAT,
            f"partition in {d} has format {meta.get('format')!r}, expected {FORMAT!r}")
    require(str(arrays["graph_fingerprint"]) == fp and arrays["parts"].shape == (n,),
            f"partition in {d} is inconsistent: {_NPZ} and {_JSON} do not belong together")
    fp_now = graph.fingerprint()
    require(fp == fp_now and n == graph.num_nodes,
            f"partition in {d} was made for a different graph (fingerprint {fp}, {n} nodes; "
            f"graph {graph.name!r} has fingerprint {fp_now}, {graph.num_nodes} nodes)")
    try:
        return Partition(arrays["parts"], p, method, fp, seed)
    except AdaqpInputError as e:
        raise AdaqpInputError(f"corrupt partition in {d}: {e}") from None
