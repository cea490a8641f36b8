"""The compact node relaxation (channels' totals) against the disaggregated LP and enumeration."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from adaqp.solver import bnb, compact
from adaqp.solver.bnb import NodeLP, branch_and_bound
from adaqp.solver.compact import CompactLP, NotCompact

_spec = importlib.util.spec_from_file_location("_patterns_tests", Path(__file__).with_name("test_solver_patterns.py"))
_pt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_pt)
_model, _brute_force = _pt._model, _pt._brute_force


def _multi_channel():
    """Eight ranks, two layers: 168 channels, 144 indicators, about 390 groups."""
    from adaqp.costmodel.analytic import ModelShape
    from adaqp.costmodel.bundled import load_cluster
    from adaqp.costmodel.profile import load_profile
    from adaqp.costmodel.workload import PlanStats
    from adaqp.solver.groups import build_groups
    from adaqp.solver.model import build_model

    from adaqp.data.spec import load_dataset
    from adaqp.halo import build_halo_plan
    from adaqp.partition import partition_graph

    g = load_dataset("sbm:nodes=1500,classes=4,feat=16,deg=6,seed=1")
    halo = build_halo_plan(g, partition_graph(g, 8, "metis", 0, "nodes"))
    cluster = load_cluster("reference-2x4-v100-pcie-100gbe")
    shape = ModelShape("gcn", (16, 32, 4))
    grp = build_groups(halo, shape.widths[:-1], "gcn", features=g.features, max_groups=300)
    model = build_model(grp, (2, 4, 8), PlanStats.from_halo_plan(halo), shape, "adaqp", cluster,
                        load_profile(cluster.profile))
    G = model.groups.num_groups
    lo, hi = model.time(np.zeros(G, int)), model.time(np.full(G, 2))
    return model, lo + 0.4 * (hi - lo)


@pytest.fixture(scope="module")
def multi():
    return _multi_channel()


@pytest.mark.parametrize("seed", range(6))
def test_bound_is_valid_at_the_root_and_below_the_lp_at_nodes(seed):
    model, budget = _model(seed)
    opt = _brute_force(model, budget)
    cl, ex = CompactLP(model, budget), NodeLP(model, budget)
    root, _, _, _ = cl.solve(cl.lo0, cl.hi0)
    assert root <= ex.solve(ex.lo0, ex.hi0)[0] * (1 + 1e-7) and root <= opt * (1 + 1e-7)
    rng = np.random.default_rng(seed)
    for _ in range(4):
        idx = rng.choice(cl.ny, size=2, replace=False)
        vals = rng.integers(0, 2, size=2)
        b, _, _, _ = cl.solve(*cl.fix_y(cl.lo0, cl.hi0, idx, vals))
        e, _, _, _ = ex.solve(*ex.fix_y(ex.lo0, ex.hi0, idx, vals))
        assert b <= e * (1 + 1e-7) or not np.isfinite(e)


def test_equals_the_disaggregated_lp_on_many_channels(multi):
    """Here the middle width's caps never bind in the LP, so nothing is lost (the benchmark's
    10,000-group root agrees to 1e-12 too, 847.256)."""
    model, budget = multi
    cl, ex = CompactLP(model, budget), NodeLP(model, budget)
    root, z, _, _ = cl.solve(cl.lo0, cl.hi0)
    assert root == pytest.approx(ex.solve(ex.lo0, ex.hi0)[0], rel=1e-7)
    frac = np.flatnonzero((z[cl.ys] > 1e-6) & (z[cl.ys] < 1 - 1e-6))[:3]
    for i in frac:
        for v in (0, 1):
            assert cl.solve(*cl.fix_y(cl.lo0, cl.hi0, i, v))[0] == \
                pytest.approx(ex.solve(*ex.fix_y(ex.lo0, ex.hi0, i, v))[0], rel=1e-7)


def test_search_with_either_relaxation_certifies_the_same_optimum(multi):
    model, budget = multi
    from adaqp.solver.milp import solve

    seed = solve(model, budget, solver="cbc", time_limit=20).choice
    a = branch_and_bound(model, budget, gap=1e-3, time_limit=120, incumbent=seed, relaxation="compact")
    b = branch_and_bound(model, budget, gap=1e-3, time_limit=120, incumbent=seed, relaxation="disaggregated")
    assert a.complete and b.complete
    assert a.lower_bound <= b.variance * (1 + 1e-9) and b.lower_bound <= a.variance * (1 + 1e-9)
    assert a.gap <= 1e-3 + 1e-12


def test_a_cut_loop_cut_short_still_gives_a_valid_bound(monkeypatch):
    """After the last round HiGHS's answer must be read before cuts are added (adding rows
    clears it: the bound then read as the all-narrowest variance, above the optimum)."""
    model, budget = _model(3)
    opt = _brute_force(model, budget)
    monkeypatch.setattr(compact, "MAX_ROUNDS", 1)
    cl = CompactLP(model, budget)
    b, z, _, _ = cl.solve(cl.lo0, cl.hi0)
    assert z is not None and b <= opt * (1 + 1e-7)


def test_out_of_proportion_loads_fall_back_to_the_disaggregated_lp():
    model, budget = _model(0)
    t = next(t for t in model.terms if t.const.size and t.A[:, :model.nx].nnz)
    A = t.A.tolil()
    r, c = t.A[:, :model.nx].nonzero()
    A[r[0], c[0]] = A[r[0], c[0]] * 3.0  # one group's row no longer proportional to its rows
    object.__setattr__(t, "A", sp.csr_matrix(A))
    with pytest.raises(NotCompact):
        CompactLP(model, budget)
    assert isinstance(bnb._relaxation(model, budget, 1, "compact"), NodeLP)
    res = branch_and_bound(model, budget, gap=0.0, time_limit=30.0)
    assert res.complete and res.variance == pytest.approx(_brute_force(model, budget), rel=1e-6)


def test_an_lp_highs_cannot_decide_stays_open_at_its_parents_bound(monkeypatch):
    model, budget = _model(2)
    opt = _brute_force(model, budget)
    real, calls = CompactLP.solve, {"n": 0}

    def flaky(self, lo, hi, cutoff=np.inf, worker=0, warm=None, devex=False):
        calls["n"] += 1
        if calls["n"] in (2, 3):  # both children of the root: no verdict
            return float("nan"), None, None, None
        return real(self, lo, hi, cutoff, worker, warm, devex)

    monkeypatch.setattr(CompactLP, "solve", flaky)
    res = branch_and_bound(model, budget, gap=0.0, time_limit=30.0, threads=1)
    assert res.lower_bound <= opt * (1 + 1e-7)
    assert res.complete and res.variance == pytest.approx(opt, rel=1e-6)


def test_new_highs_keeps_the_banner_off_stdout():
    """HiGHS's banner comes from C++ once per process: checked in a fresh one."""
    import subprocess
    import sys

    code = ("import highspy\nfrom adaqp.solver.lpstatus import new_highs\n"
            "h = new_highs(highspy)\nh2 = new_highs(highspy)\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == "ok\n"


@pytest.mark.parametrize("seed", range(4))
def test_node_milp_keeps_free_indicators_free(seed):
    """At the root (nothing fixed) the node's MILP is the whole problem: the enumerated optimum,
    with a dual bound no higher."""
    from adaqp.solver.milp import variance_matrix

    model, budget = _model(seed)
    opt = _brute_force(model, budget)
    cl = CompactLP(model, budget)
    bound, choice = cl.milp(cl.lo0, cl.hi0, 30.0)
    var = variance_matrix(model)
    assert choice is not None and model.time(choice) <= budget * (1 + 1e-9)
    assert float(var[np.arange(var.shape[0]), choice].sum()) == pytest.approx(opt, rel=1e-6)
    assert bound <= opt * (1 + 1e-6)
    lo, hi = cl.fix_y(cl.lo0, cl.hi0, 0, 0.0)  # one indicator fixed: the MILP respects it
    _, c0 = cl.milp(lo, hi, 30.0)
    assert c0 is None or not model.z(c0)[model.nx]


@pytest.mark.parametrize("seed", range(4))
def test_node_milp_with_a_cutoff_proves_no_more_than_it(seed):
    """Below the optimum a cutoff leaves no plan: the bound is the cutoff itself (valid), never
    the value of a plan HiGHS found above it (it may still hand one back: any plan meeting the
    budget is a fair incumbent). Above the optimum the optimum is found."""
    from adaqp.solver.milp import variance_matrix

    model, budget = _model(seed)
    opt = _brute_force(model, budget)
    cl = CompactLP(model, budget)
    low = opt * (1 - 1e-3)
    bound, choice = cl.milp(cl.lo0, cl.hi0, 30.0, cutoff=low)
    assert choice is None or model.time(choice) <= budget * (1 + 1e-9)
    assert bound <= low and bound >= low * (1 - 1e-9)
    bound, choice = cl.milp(cl.lo0, cl.hi0, 30.0, cutoff=opt * 1.01)
    var = variance_matrix(model)
    assert choice is not None and float(var[np.arange(var.shape[0]), choice].sum()) == pytest.approx(opt, rel=1e-6)
    assert bound <= opt * (1 + 1e-6)


@pytest.mark.parametrize("relax", [CompactLP, NodeLP])
def test_a_child_from_its_parents_basis_has_the_cold_bound(multi, relax):
    """Warm from the parent's basis (bnb), from another node's, or cold: one LP, one bound."""
    model, budget = multi
    warm = relax(model, budget)
    root, z, _, basis = warm.solve(warm.lo0, warm.hi0)
    y = z[warm.ys]
    frac = np.flatnonzero((y > 1e-6) & (y < 1 - 1e-6))[:4]
    assert basis is not None and frac.size
    for i in frac:
        for v in (0, 1):
            kid = warm.fix_y(warm.lo0, warm.hi0, int(i), v)
            mine, *_ = warm.solve(*kid, warm=basis)
            cold, *_ = relax(model, budget).solve(*kid)
            assert mine == pytest.approx(cold, rel=1e-7)


def test_workers_share_cuts_in_one_order(multi, monkeypatch):
    """A cut one worker finds reaches the other before its next solve, in the same row order, so
    a basis taken on one worker fits the other (more rows there start basic)."""
    model, budget = multi
    none = (np.zeros(0, np.int64),) * 3
    monkeypatch.setattr(CompactLP, "_seed_cuts", lambda self: none)  # every cut found lazily
    cl = CompactLP(model, budget, workers=2)
    root, z, _, basis = cl.solve(cl.lo0, cl.hi0, worker=0)
    assert len(cl._pool) > 0
    rows0 = cl.workers[0].getNumRow()
    assert cl.workers[1].getNumRow() < rows0  # not yet synced
    i = int(np.argmax(np.minimum(z[cl.ys], 1 - z[cl.ys])))
    kid = cl.fix_y(cl.lo0, cl.hi0, i, 0)
    b1, *_ = cl.solve(*kid, worker=1, warm=basis)
    assert cl.workers[1].getNumRow() >= rows0
    lp0, lp1 = cl.workers[0].getLp(), cl.workers[1].getLp()
    n = min(lp0.num_row_, lp1.num_row_)
    assert np.array_equal(np.asarray(lp0.row_upper_)[:n], np.asarray(lp1.row_upper_)[:n])
    assert np.array_equal(np.asarray(lp0.a_matrix_.index_)[:100], np.asarray(lp1.a_matrix_.index_)[:100])
    b0, *_ = CompactLP(model, budget).solve(*kid)
    assert b1 == pytest.approx(b0, rel=1e-7)


def test_only_a_workers_first_solve_without_a_basis_is_cold(multi, monkeypatch):
    """The interior-point start serves a root only: later rounds, later nodes, and a worker's
    first node given its parent's basis all re-solve warm."""
    model, budget = multi
    seen = []
    real = compact.run_checked

    def spy(h, hs, limit_s, cold=False):
        seen.append(cold)
        return real(h, hs, limit_s, cold)

    monkeypatch.setattr(compact, "run_checked", spy)
    cl = CompactLP(model, budget, workers=2)
    root, z, _, basis = cl.solve(cl.lo0, cl.hi0, worker=0)
    assert seen[0] and not any(seen[1:])
    n = len(seen)
    kid = cl.fix_y(cl.lo0, cl.hi0, int(np.argmax(np.minimum(z[cl.ys], 1 - z[cl.ys]))), 0)
    cl.solve(*kid, worker=1, warm=basis)  # worker 1's first solve, from the root's basis
    cl.solve(*kid, worker=0)
    assert not any(seen[n:])


def test_devex_pricing_gives_the_same_node_bounds(multi):
    """A child solved with Devex (the search's far children) ends at the bound steepest edge
    reaches: pricing picks the pivots, not the optimum. One worker switches back and forth."""
    model, budget = multi
    cl = CompactLP(model, budget, workers=1)
    root, z, _, basis = cl.solve(cl.lo0, cl.hi0)
    y = z[cl.ys]
    frac = np.flatnonzero((y > 1e-6) & (y < 1 - 1e-6))[:4]
    assert frac.size
    for i in frac.tolist():
        for v in (0, 1):
            kid = cl.fix_y(cl.lo0, cl.hi0, i, v)
            steep, *_ = cl.solve(*kid, warm=basis)
            devex, *_ = cl.solve(*kid, warm=basis, devex=True)
            assert devex == pytest.approx(steep, rel=1e-7) and devex >= root - 1e-7 * abs(root)


def test_search_prices_the_far_child_with_devex(multi, monkeypatch):
    """Of two siblings the one whose indicator moves past 0.5 from the parent's LP value is the
    Devex one; the certified bound is the same as when every child prices with steepest edge."""
    model, budget = multi
    calls = []
    real = CompactLP.solve

    def spy(self, lo, hi, cutoff=np.inf, worker=0, warm=None, devex=False):
        calls.append(devex)
        return real(self, lo, hi, cutoff, worker, warm, devex)

    from adaqp.solver.milp import solve

    seed = solve(model, budget, solver="cbc", time_limit=20).choice
    monkeypatch.setattr(CompactLP, "solve", spy)
    res = branch_and_bound(model, budget, gap=1e-3, time_limit=120, incumbent=seed, threads=1)
    assert res.complete and any(calls) and not all(calls[1:])
    calls.clear()
    monkeypatch.setattr(CompactLP, "solve", lambda self, lo, hi, cutoff=np.inf, worker=0, warm=None, devex=False:
                        real(self, lo, hi, cutoff, worker, warm, False))
    plain = branch_and_bound(model, budget, gap=1e-3, time_limit=120, incumbent=seed, threads=1)
    assert plain.complete
    # both are certified to 1e-3 of their best plans: the bounds agree to that
    assert res.lower_bound == pytest.approx(plain.lower_bound, rel=2e-3)
    assert res.variance == pytest.approx(plain.variance, rel=2e-3)
