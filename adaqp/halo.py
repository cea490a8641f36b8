"""The halo plan: what every rank owns, sends, receives and aggregates (pure numpy).

Local numbering on rank r: inner nodes first (central, then marginal; ascending global id within
each), then the halo rows, grouped by owning peer in peer order and ascending global id within a
peer. A sender sends the rows a receiver needs in ascending global id, which is exactly the
receiver's halo order, so a received buffer is copied into place without any index.

Edge coefficients use the *global* in-degree d (self loops are added by the model):
GCN ``1/sqrt((d_u+1)(d_v+1))`` (self loop ``1/(d_v+1)``) and SAGE-mean ``1/d_v``. The
aggregation score of a sent row u -> peer p sums the coefficients of the edges u -> v, v on p:
it weights the quantization variance of that row (the AdaQP objective: Wan, Zhao, Wu, MLSys 2023).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adaqp.errors import AdaqpInputError, require
from adaqp.graph import Graph
from adaqp.io import read_json, read_npz, write_json, write_npz
from adaqp.partition import Partition, cut_pairs, edge_endpoints, group_order, offsets, pair_matrix
from adaqp.wire import message_nbytes

FORMAT = "adaqp-haloplan-v1"
_NPZ, _JSON = "halo_plan.npz", "halo_plan.json"


def _in_range(ids: np.ndarray, hi: int) -> bool:
    return ids.size == 0 or (int(ids.min()) >= 0 and int(ids.max()) < hi)


@dataclass(frozen=True, eq=False)
class LocalCSR:
    """Destination-indexed CSR over local ids with both normalisations' edge weights."""

    indptr: np.ndarray
    indices: np.ndarray
    w_gcn: np.ndarray
    w_sage: np.ndarray

    FIELDS = ("indptr", "indices", "w_gcn", "w_sage")

    @property
    def num_rows(self) -> int:
        return int(self.indptr.shape[0] - 1)

    @property
    def nnz(self) -> int:
        return int(self.indices.shape[0])

    def row_ids(self) -> np.ndarray:
        """Row index of every stored edge (COO rows)."""
        return np.repeat(np.arange(self.num_rows, dtype=np.int64), np.diff(self.indptr))

    def check(self, num_rows: int, num_cols: int, what: str) -> None:
        require(self.indptr.shape == (num_rows + 1,) and self.indptr[0] == 0
                and self.indptr[-1] == self.nnz, f"{what}: indptr does not match {num_rows} rows")
        require(self.w_gcn.shape == self.indices.shape == self.w_sage.shape,
                f"{what}: indices and weights differ in length")
        require(_in_range(self.indices, num_cols), f"{what}: column ids out of range [0, {num_cols})")


@dataclass(frozen=True, eq=False)
class RankHalo:
    """Everything one rank needs; ``central`` rows are local ids ``0..num_central-1`` and
    ``marginal`` row i is local id ``num_central + i``."""

    rank: int
    num_parts: int
    inner_global: np.ndarray
    num_central: int
    num_marginal: int
    halo_global: np.ndarray
    recv_ptr: np.ndarray
    send_ptr: np.ndarray
    send_local: np.ndarray
    send_score_gcn: np.ndarray
    send_score_sage: np.ndarray
    self_weight_gcn: np.ndarray
    central: LocalCSR
    marginal: LocalCSR

    ARRAYS = ("inner_global", "halo_global", "recv_ptr", "send_ptr", "send_local",
              "send_score_gcn", "send_score_sage", "self_weight_gcn")
    INTS = ("rank", "num_parts", "num_central", "num_marginal")

    def __post_init__(self) -> None:
        what, p = f"halo plan rank {self.rank}", self.num_parts
        require(self.num_central + self.num_marginal == self.inner_global.shape[0],
                f"{what}: central + marginal != inner count")
        for name, total in (("recv_ptr", self.num_halo), ("send_ptr", self.send_local.shape[0])):
            ptr = getattr(self, name)
            require(ptr.shape == (p + 1,) and ptr[0] == 0 and ptr[-1] == total
                    and bool(np.all(np.diff(ptr) >= 0)), f"{what}: bad {name}")
        require(self.send_score_gcn.shape == self.send_local.shape == self.send_score_sage.shape,
                f"{what}: send scores and send list differ in length")
        require(self.self_weight_gcn.shape == self.inner_global.shape, f"{what}: bad self weights")
        require(_in_range(self.send_local, self.num_inner), f"{what}: send ids out of the inner range")
        self.central.check(self.num_central, self.num_inner, f"{what} central CSR")
        self.marginal.check(self.num_marginal, self.num_inner + self.num_halo, f"{what} marginal CSR")

    @property
    def num_inner(self) -> int:
        return int(self.inner_global.shape[0])

    @property
    def num_halo(self) -> int:
        return int(self.halo_global.shape[0])

    @property
    def num_local(self) -> int:
        return self.num_inner + self.num_halo

    def send_counts(self) -> np.ndarray:
        return np.diff(self.send_ptr)

    def recv_counts(self) -> np.ndarray:
        return np.diff(self.recv_ptr)

    def send_global(self, peer: int | None = None) -> np.ndarray:
        """Global ids of the rows sent (to ``peer`` only, when given)."""
        if peer is None:
            return self.inner_global[self.send_local]
        return self.inner_global[self.send_local[self.send_ptr[peer]:self.send_ptr[peer + 1]]]

    def local_to_global(self) -> np.ndarray:
        """Global id of every local id (inner, then halo)."""
        return np.concatenate([self.inner_global, self.halo_global])


@dataclass(frozen=True, eq=False)
class HaloPlan:
    """One :class:`RankHalo` per rank, for the graph with ``graph_fingerprint``."""

    num_parts: int
    ranks: tuple
    graph_fingerprint: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranks", tuple(self.ranks))
        require(len(self.ranks) == self.num_parts, "halo plan: one RankHalo per part expected")
        require(all(rh.rank == i and rh.num_parts == self.num_parts for i, rh in enumerate(self.ranks)),
                "halo plan: ranks out of order or with the wrong part count")

    @property
    def num_nodes(self) -> int:
        return sum(rh.num_inner for rh in self.ranks)

    def pair_rows(self) -> np.ndarray:
        """``[P, P]`` int64: rows sender s sends to receiver r (one exchange, one direction)."""
        return np.stack([rh.send_counts() for rh in self.ranks]).astype(np.int64)

    def pair_nbytes(self, width: int, bits: int) -> np.ndarray:
        """``[P, P]`` bytes on the wire per pair with every row at ``bits`` bits."""
        return message_nbytes(self.pair_rows(), width, bits)

    def validate(self) -> None:
        """Cross-rank consistency: ownership, matching send/recv lists, marginal definition."""
        n, p = self.num_nodes, self.num_parts
        owner = np.full(n, -1, dtype=np.int64)
        for rh in self.ranks:
            g = rh.inner_global
            require(_in_range(g, n), f"halo plan rank {rh.rank}: inner ids out of range")
            require(bool(np.all(owner[g] == -1)), f"halo plan rank {rh.rank}: node owned twice")
            owner[g] = rh.rank
        require(bool(np.all(owner >= 0)), "halo plan: some node is owned by no rank")
        for r, rh in enumerate(self.ranks):
            require(rh.recv_counts()[r] == 0 and rh.send_counts()[r] == 0,
                    f"halo plan rank {r}: sends or receives rows to itself")
            require(_in_range(rh.halo_global, n), f"halo plan rank {r}: halo ids out of range")
            for s in range(p):
                got = rh.halo_global[rh.recv_ptr[s]:rh.recv_ptr[s + 1]]
                require(np.array_equal(self.ranks[s].send_global(r), got),
                        f"halo plan: rows sent {s}->{r} differ from what {r} expects")
                require(bool(np.all(owner[got] == s)) and bool(np.all(np.diff(got) > 0)),
                        f"halo plan: halo of rank {r} from {s} not owned by {s} or not ascending")
            rows_with_halo = np.unique(rh.marginal.row_ids()[rh.marginal.indices >= rh.num_inner])
            require(rows_with_halo.size == rh.num_marginal,
                    f"halo plan rank {r}: some marginal node has no remote in-neighbour")

    # ---- persistence -----------------------------------------------------------------------
    def save(self, dirpath: str | os.PathLike) -> Path:
        """``halo_plan.npz`` (keys ``r{rank}_{field}``) + ``halo_plan.json``, JSON last."""
        d = Path(dirpath)
        arrays = {"format": np.array(FORMAT), "graph_fingerprint": np.array(self.graph_fingerprint)}
        for rh in self.ranks:
            pre = f"r{rh.rank}_"
            arrays.update({pre + k: np.asarray(getattr(rh, k)) for k in RankHalo.ARRAYS + RankHalo.INTS})
            arrays.update({f"{pre}{part}_{k}": getattr(getattr(rh, part), k)
                           for part in ("central", "marginal") for k in LocalCSR.FIELDS})
        write_npz(d / _NPZ, arrays)
        write_json(d / _JSON, {
            "format": FORMAT, "num_parts": self.num_parts, "graph_fingerprint": self.graph_fingerprint,
            "num_nodes": self.num_nodes, "pair_rows": self.pair_rows().tolist(),
            "ranks": [dict(inner=rh.num_inner, central=rh.num_central, marginal=rh.num_marginal,
                           halo=rh.num_halo, edges=rh.central.nnz + rh.marginal.nnz) for rh in self.ranks],
        })
        return d

    @classmethod
    def load(cls, dirpath: str | os.PathLike, graph: Graph | None = None) -> "HaloPlan":
        """Read and fully validate a saved plan; with ``graph``, refuse one made for another."""
        d = Path(dirpath)
        meta = read_json(d / _JSON)
        z = read_npz(d / _NPZ, required=("format", "graph_fingerprint"))
        require(meta.get("format") == FORMAT == str(z["format"]),
                f"halo plan in {d} has format {meta.get('format')!r}, expected {FORMAT!r}")
        fp = str(z["graph_fingerprint"])
        require(meta.get("graph_fingerprint") == fp,
                f"halo plan in {d} is inconsistent: {_NPZ} and {_JSON} do not belong together")
        if graph is not None:
            require(fp == graph.fingerprint(),
                    f"halo plan in {d} was made for a different graph (fingerprint {fp}; "
                    f"graph {graph.name!r} has fingerprint {graph.fingerprint()})")
        try:
            p = int(meta["num_parts"])
            plan = cls(p, tuple(_load_rank(z, r) for r in range(p)), fp)
            plan.validate()
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise AdaqpInputError(f"corrupt halo plan in {d}: {e}") from None
        return plan


def _load_rank(z: dict, r: int) -> RankHalo:
    pre = f"r{r}_"
    csrs = {part: LocalCSR(*(z[f"{pre}{part}_{k}"] for k in LocalCSR.FIELDS))
            for part in ("central", "marginal")}
    ints = {k: int(z[pre + k]) for k in RankHalo.INTS}
    return RankHalo(**{k: z[pre + k] for k in RankHalo.ARRAYS}, **ints, **csrs)


def _edge_weights(deg: np.ndarray, s: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCN ``1/sqrt((d_u+1)(d_v+1))`` and SAGE-mean ``1/d_v`` (an edge into v means d_v >= 1)."""
    return 1.0 / np.sqrt((deg[s] + 1.0) * (deg[d] + 1.0)), 1.0 / deg[d]


def _inner_layout(parts: np.ndarray, marginal: np.ndarray, p: int):
    """Nodes grouped by (part, marginal), ascending id within a group; each node's local id."""
    group = parts * 2 + marginal
    order = group_order(group, 2 * p)
    off = offsets(np.bincount(group, minlength=2 * p))
    local_id = np.empty(parts.shape[0], dtype=np.int64)
    local_id[order] = np.arange(parts.shape[0], dtype=np.int64) - off[0::2][parts[order]]
    return order, off, local_id


def _pair_layout(pair_s: np.ndarray, pair_r: np.ndarray, p: int):
    """Pairs come sorted by row id; regroup them by (r, s) for receivers and (s, r) for
    senders (stable, so rows stay ascending) and give each its position in r's halo."""
    recv_order = group_order(pair_r * p + pair_s, p * p)
    send_order = group_order(pair_s * p + pair_r, p * p)
    recv_off = offsets(np.bincount(pair_r, minlength=p))
    halo_pos = np.empty(pair_r.shape[0], dtype=np.int64)
    halo_pos[recv_order] = np.arange(pair_r.shape[0]) - recv_off[pair_r[recv_order]]
    return recv_order, recv_off, send_order, offsets(np.bincount(pair_s, minlength=p)), halo_pos


def build_halo_plan(graph: Graph, partition: Partition) -> HaloPlan:
    """Vectorised over all edges once; the per-rank work is slicing."""
    partition.check_graph(graph)
    p, parts, deg = partition.num_parts, partition.parts, graph.in_degree.astype(np.float64)
    src, dst = edge_endpoints(graph)
    cut, pair_u, pair_r, pair_of_cut = cut_pairs(src, dst, parts, p)
    pair_s = parts[pair_u]
    pr = pair_matrix(pair_s, pair_r, p)
    marginal = np.zeros(graph.num_nodes, dtype=bool)
    marginal[dst[cut]] = True  # some in-edge crosses the cut
    node_order, node_off, local_id = _inner_layout(parts, marginal, p)
    recv_order, recv_off, send_order, send_off, halo_pos = _pair_layout(pair_s, pair_r, p)
    scores = [np.bincount(pair_of_cut, weights=w, minlength=pair_u.shape[0]).astype(np.float32)
              for w in _edge_weights(deg, src[cut], dst[cut])]

    # Column of each edge in its destination's local numbering (halo ids follow inner ids).
    col = local_id[src]
    col[cut] = np.diff(node_off[0::2])[parts[dst[cut]]] + halo_pos[pair_of_cut]
    edge_group = parts[dst] * 2 + marginal[dst]
    edge_order = group_order(edge_group, 2 * p)
    edge_off = offsets(np.bincount(edge_group, minlength=2 * p))

    def csr(g: int) -> tuple[LocalCSR, np.ndarray]:
        # Edges of a group are in CSR (ascending destination) order, like the group's nodes.
        nodes, e = node_order[node_off[g]:node_off[g + 1]], edge_order[edge_off[g]:edge_off[g + 1]]
        w = [x.astype(np.float32) for x in _edge_weights(deg, src[e], dst[e])]
        return LocalCSR(offsets(graph.in_degree[nodes]), col[e], *w), nodes

    ranks = []
    for r in range(p):
        (central, c_nodes), (marg, m_nodes) = csr(2 * r), csr(2 * r + 1)
        inner, sent = np.concatenate([c_nodes, m_nodes]), send_order[send_off[r]:send_off[r + 1]]
        ranks.append(RankHalo(
            rank=r, num_parts=p, inner_global=inner, num_central=c_nodes.size, num_marginal=m_nodes.size,
            halo_global=pair_u[recv_order[recv_off[r]:recv_off[r + 1]]], recv_ptr=offsets(pr[:, r]),
            send_ptr=offsets(pr[r]), send_local=local_id[pair_u[sent]],
            send_score_gcn=scores[0][sent], send_score_sage=scores[1][sent],
            self_weight_gcn=(1.0 / (deg[inner] + 1.0)).astype(np.float32), central=central, marginal=marg))
    return HaloPlan(p, tuple(ranks), partition.graph_fingerprint)
