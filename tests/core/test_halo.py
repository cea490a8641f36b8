"""HaloPlan: ownership, exchange lists, local CSRs and scores against single-process references."""

import dataclasses
import json
from collections import defaultdict
from functools import partial

import numpy as np
import pytest
import scipy.sparse as sp
from helpers.graphs import random_graph  # tests/helpers, on sys.path via tests/conftest.py

from adaqp.errors import AdaqpInputError
from adaqp.halo import HaloPlan, build_halo_plan
from adaqp.partition import METHODS, partition_graph, partition_stats
from adaqp.wire import message_nbytes

make_graph = partial(random_graph, n=90, m=360, feat=5, name="halo-test")


def global_operators(g):
    """Single-process references: Â = D^-1/2 (A + I) D^-1/2 (d = in-degree + 1) and D^-1 A."""
    src, dst = g.edge_index()
    n, d = g.num_nodes, g.in_degree.astype(np.float64)
    a = sp.csr_matrix((np.ones(src.size), (dst, src)), shape=(n, n))
    inv_sqrt = sp.diags(1.0 / np.sqrt(d + 1.0))
    gcn = inv_sqrt @ (a + sp.identity(n)) @ inv_sqrt
    sage = sp.diags(np.divide(1.0, d, out=np.zeros(n), where=d > 0)) @ a
    return gcn.tocsr(), sage.tocsr()


def exchange(plan, x):
    """Simulate the halo exchange: every rank's [inner; halo] rows, built from what peers send."""
    out = []
    for r, rh in enumerate(plan.ranks):
        halo = np.zeros((rh.num_halo, x.shape[1]))
        for s, peer in enumerate(plan.ranks):
            rows = peer.send_local[peer.send_ptr[r]:peer.send_ptr[r + 1]]
            halo[rh.recv_ptr[s]:rh.recv_ptr[s + 1]] = x[peer.inner_global[rows]]
        out.append(np.concatenate([x[rh.inner_global], halo]))
    return out


def local_matrix(csr, weights, num_cols):
    return sp.csr_matrix((weights.astype(np.float64), csr.indices, csr.indptr), shape=(csr.num_rows, num_cols))


CASES = [(m, p, d) for m in METHODS for p in (1, 2, 3, 4, 5) for d in (True, False)]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c[0]}-{c[1]}-{'dir' if c[2] else 'undir'}")
def case(request):
    method, p, directed = request.param
    g = make_graph(directed=directed, seed=p)
    part = partition_graph(g, p, method, seed=1)
    return g, part, build_halo_plan(g, part)


def test_ownership_and_inner_order(case):
    g, part, plan = case
    plan.validate()
    owners = np.concatenate([rh.inner_global for rh in plan.ranks])
    assert np.array_equal(np.sort(owners), np.arange(g.num_nodes))  # inner on exactly one rank
    for r, rh in enumerate(plan.ranks):
        assert np.all(part.parts[rh.inner_global] == r)
        c, m = rh.inner_global[:rh.num_central], rh.inner_global[rh.num_central:]
        assert np.all(np.diff(c) > 0) and np.all(np.diff(m) > 0)
        for v in c:  # central: no remote in-neighbour; marginal: at least one
            assert np.all(part.parts[g.indices[g.indptr[v]:g.indptr[v + 1]]] == r)
        for v in m:
            assert np.any(part.parts[g.indices[g.indptr[v]:g.indptr[v + 1]]] != r)


def test_halo_is_every_remote_in_neighbour_once(case):
    g, part, plan = case
    src, dst = g.edge_index()
    for r, rh in enumerate(plan.ranks):
        want = np.unique(src[(part.parts[dst] == r) & (part.parts[src] != r)])
        assert np.array_equal(np.sort(rh.halo_global), want)
        for s in range(part.num_parts):
            got = rh.halo_global[rh.recv_ptr[s]:rh.recv_ptr[s + 1]]
            assert np.all(part.parts[got] == s) and np.all(np.diff(got) > 0)
            assert np.array_equal(plan.ranks[s].send_global(r), got)  # sender order == receiver order
        if part.num_parts == 1:
            assert rh.num_halo == 0 and rh.send_local.size == 0


def test_local_csrs_reproduce_the_global_edge_set(case):
    g, _, plan = case
    src, dst = g.edge_index()
    d = g.in_degree.astype(np.float64)
    got = []
    for rh in plan.ranks:
        l2g = rh.local_to_global()
        for csr, first_row in ((rh.central, 0), (rh.marginal, rh.num_central)):
            rows = rh.inner_global[first_row + csr.row_ids()]
            got.append(np.stack([l2g[csr.indices], rows, csr.w_gcn, csr.w_sage]))
        assert np.all(rh.central.indices < rh.num_inner)
    got = np.concatenate(got, axis=1)
    got = got[:, np.lexsort((got[0], got[1]))]
    assert np.array_equal(got[0], src) and np.array_equal(got[1], dst)
    np.testing.assert_allclose(got[2], 1 / np.sqrt((d[src] + 1) * (d[dst] + 1)), rtol=1e-6)
    np.testing.assert_allclose(got[3], 1 / d[dst], rtol=1e-6)


def test_local_aggregation_equals_global(case):
    g, _, plan = case
    x = np.random.default_rng(0).standard_normal((g.num_nodes, 7))
    gcn, sage = global_operators(g)
    want_gcn, want_sage = gcn @ x, sage @ x
    for rh, xl in zip(plan.ranks, exchange(plan, x)):
        y_gcn, y_sage = [], []
        for csr in (rh.central, rh.marginal):
            y_gcn.append(local_matrix(csr, csr.w_gcn, rh.num_local) @ xl)
            y_sage.append(local_matrix(csr, csr.w_sage, rh.num_local) @ xl)
        self_term = rh.self_weight_gcn[:, None] * xl[:rh.num_inner]
        np.testing.assert_allclose(np.concatenate(y_gcn) + self_term, want_gcn[rh.inner_global], atol=1e-6)
        np.testing.assert_allclose(np.concatenate(y_sage), want_sage[rh.inner_global], atol=1e-6)


def test_scores_match_brute_force(case):
    g, part, plan = case
    d = g.in_degree
    ref_gcn, ref_sage = defaultdict(float), defaultdict(float)
    for u, v in g.edge_index().T.tolist():
        if part.parts[u] != part.parts[v]:
            ref_gcn[u, part.parts[v]] += 1 / np.sqrt((d[u] + 1) * (d[v] + 1))
            ref_sage[u, part.parts[v]] += 1 / d[v]
    got_gcn, got_sage = {}, {}
    for rh in plan.ranks:
        for p in range(plan.num_parts):
            sl = slice(rh.send_ptr[p], rh.send_ptr[p + 1])
            for u, sg, ss in zip(rh.send_global(p), rh.send_score_gcn[sl], rh.send_score_sage[sl]):
                got_gcn[u, p], got_sage[u, p] = sg, ss
    assert got_gcn.keys() == ref_gcn.keys()
    for k in ref_gcn:
        assert got_gcn[k] == pytest.approx(ref_gcn[k], rel=1e-6)
        assert got_sage[k] == pytest.approx(ref_sage[k], rel=1e-6)


def test_pair_rows_and_bytes(case):
    g, part, plan = case
    rows = plan.pair_rows()
    assert np.array_equal(rows, partition_stats(g, part).pair_rows)
    for width, bits in ((5, 2), (64, 4), (602, 8), (256, 32)):
        assert np.array_equal(plan.pair_nbytes(width, bits), message_nbytes(rows, width, bits))


def test_node_fed_only_by_remote_nodes_is_marginal():
    g = make_graph(seed=3)
    plan = build_halo_plan(g, partition_graph(g, 3, "contiguous"))
    rh = plan.ranks[0]
    pos = int(np.flatnonzero(rh.inner_global == 0)[0])
    assert pos >= rh.num_central
    row = pos - rh.num_central
    cols = rh.marginal.indices[rh.marginal.indptr[row]:rh.marginal.indptr[row + 1]]
    assert np.all(cols >= rh.num_inner)


def test_save_load_round_trip(tmp_path):
    g = make_graph()
    plan = build_halo_plan(g, partition_graph(g, 3, "metis"))
    plan.save(tmp_path)
    meta = json.loads((tmp_path / "halo_plan.json").read_text())
    assert meta["num_parts"] == 3 and meta["pair_rows"] == plan.pair_rows().tolist()
    back = HaloPlan.load(tmp_path, g)
    assert back.graph_fingerprint == plan.graph_fingerprint
    for a, b in zip(plan.ranks, back.ranks):
        for f in dataclasses.fields(a):
            x, y = getattr(a, f.name), getattr(b, f.name)
            if dataclasses.is_dataclass(x):
                assert all(np.array_equal(getattr(x, k), getattr(y, k)) for k in x.FIELDS)
            else:
                assert np.array_equal(x, y), f.name
    with pytest.raises(AdaqpInputError, match="different graph"):
        HaloPlan.load(tmp_path, make_graph(seed=42))


def test_validate_catches_inconsistent_plans(tmp_path):
    g = make_graph()
    plan = build_halo_plan(g, partition_graph(g, 3, "random"))
    rh = plan.ranks[1]
    swapped = rh.send_local.copy()
    swapped[[0, 1]] = swapped[[1, 0]]  # sender order no longer matches the receiver's
    bad = dataclasses.replace(rh, send_local=swapped)
    broken = HaloPlan(3, (plan.ranks[0], bad, plan.ranks[2]), plan.graph_fingerprint)
    with pytest.raises(AdaqpInputError, match="differ from what"):
        broken.validate()
    broken.save(tmp_path)
    with pytest.raises(AdaqpInputError, match="corrupt halo plan"):
        HaloPlan.load(tmp_path)
    with pytest.raises(AdaqpInputError, match="bad recv_ptr"):
        dataclasses.replace(rh, recv_ptr=rh.recv_ptr[::-1].copy())
