"""Branch and bound over the coding-intercept indicators, on tiny instances solved by enumeration."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from adaqp.solver.bnb import NodeLP, branch_and_bound
from adaqp.solver.milp import variance_matrix
from adaqp.solver.patterns import disaggregated_lp_bound

# the same hand-built instances and enumeration as the pattern tests (imported by path: the tests
# run with --import-mode=importlib and tests/solver is not a package)
_spec = importlib.util.spec_from_file_location("_patterns_tests", Path(__file__).with_name("test_solver_patterns.py"))
_pt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_pt)
_model, _brute_force = _pt._model, _pt._brute_force


@pytest.mark.parametrize("seed", range(6))
def test_bound_brackets_the_enumerated_optimum_and_meets_it(seed):
    model, budget = _model(seed)
    opt = _brute_force(model, budget)
    res = branch_and_bound(model, budget, gap=0.0, time_limit=30.0)
    assert res.branch_vars == len(model.ysets) == 6  # 3 widths x (encode, decode)
    assert res.lower_bound <= opt * (1 + 1e-7)
    assert res.variance >= opt * (1 - 1e-9)
    assert res.complete  # exhausted: bound and plan meet at the optimum
    assert res.variance == pytest.approx(opt, rel=1e-6) and res.lower_bound == pytest.approx(opt, rel=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_plan_meets_the_budget_under_the_exact_model(seed):
    model, budget = _model(seed)
    res = branch_and_bound(model, budget, gap=1e-3, time_limit=30.0)
    assert res.choice is not None
    assert model.time(res.choice) <= budget * (1 + 1e-9)  # intercepts included
    var = variance_matrix(model)
    assert res.variance == pytest.approx(float(var[np.arange(var.shape[0]), res.choice].sum()))
    assert res.gap <= 1e-3 + 1e-12


@pytest.mark.parametrize("seed", range(3))
def test_early_stop_still_gives_a_valid_bound(seed):
    model, budget = _model(seed, G=7)
    opt = _brute_force(model, budget)
    res = branch_and_bound(model, budget, gap=0.0, time_limit=0.0)  # root only
    assert res.lower_bound <= opt * (1 + 1e-7)


@pytest.mark.parametrize("seed", range(3))
def test_root_is_the_disaggregated_lp_and_a_forbidden_width_carries_nothing(seed):
    model, budget = _model(seed)
    node = NodeLP(model, budget)
    root, z, _, _ = node.solve(node.lo0, node.hi0)
    assert root == pytest.approx(disaggregated_lp_bound(model, budget), rel=1e-7)
    assert (z[node.ys] >= -1e-9).all() and (z[node.ys] <= 1 + 1e-9).all()
    i = int(np.argmax(z[node.ys]))  # forbid the most used indicator
    lo, hi = node.fix_y(node.lo0, node.hi0, i, 0)
    b, zc, _, _ = node.solve(lo, hi)
    if zc is not None:
        assert np.abs(zc[model.ysets[i]]).max() <= 1e-9 and b >= root - 1e-9 * abs(root)


@pytest.mark.parametrize("seed", range(3))
def test_a_cutoff_never_reports_below_itself_nor_above_the_lp(seed):
    model, budget = _model(seed)
    node = NodeLP(model, budget)
    _, z, _, _ = node.solve(node.lo0, node.hi0)
    lo, hi = node.fix_y(node.lo0, node.hi0, int(np.argmax(z[node.ys])), 0)
    exact, _, _, _ = node.solve(lo, hi)
    if not np.isfinite(exact):
        return  # forbidding that width leaves no plan: nothing to cut
    for cut in (exact * 0.9, exact * 1.1):
        node.solve(node.lo0, node.hi0)  # back at the root's basis: the child is a warm re-solve
        b, zc, _, _ = node.solve(lo, hi, cutoff=cut)
        assert b <= exact * (1 + 1e-9)  # a valid bound: never above the node's LP
        assert zc is not None or b == cut  # stopped early only at the cutoff


def test_infeasible_budget_gives_no_plan():
    model, budget = _model(1)
    lo = model.time(np.zeros(model.groups.num_groups, int))
    res = branch_and_bound(model, lo * 0.5, gap=0.0, time_limit=5.0)
    assert res.choice is None and res.variance == np.inf


@pytest.mark.parametrize("seed", range(4))
def test_certify_keeps_the_better_plan_and_bounds_the_optimum(seed):
    from adaqp.solver.bnb import certify
    from adaqp.solver.milp import solve

    model, budget = _model(seed)
    opt = _brute_force(model, budget)
    sol = solve(model, budget, solver="greedy")
    before = sol.variance
    sol = certify(model, sol, budget, 0.0, 30.0)
    assert sol.variance <= before and sol.variance == pytest.approx(opt, rel=1e-6)
    assert sol.size["certified_lower_bound"] <= opt * (1 + 1e-7) and sol.size["certify_complete"]
    assert model.time(sol.choice) <= budget * (1 + 1e-9)
    if sol.variance < before:  # a replaced plan reports the search's gap, not the first solve's
        assert sol.gap == sol.size["certified_gap"] and sol.size["formulation"] == "branch and bound"


@pytest.mark.parametrize("seed", range(3))
def test_cap_columns_give_the_per_member_lp_at_every_node(seed):
    """The cap-column rows (one ``u`` per channel and width) against the per-member rows solved
    by SciPy, at the root and with indicators fixed either way."""
    from scipy.optimize import linprog

    from adaqp.solver.nodelp import _disaggregated_rows
    from adaqp.solver.milp import _problem, var_scale

    model, budget = _model(seed)
    node = NodeLP(model, budget)
    var = variance_matrix(model)
    pb = _problem(model, var, "min-variance", budget * (1 + 1e-9), 0.0)
    A, lo, hi = _disaggregated_rows(pb, model.ysets)
    eq = np.isfinite(lo)
    rng = np.random.default_rng(seed)
    for _ in range(4):
        idx = rng.choice(node.ny, size=2, replace=False)
        vals = rng.integers(0, 2, size=2)
        clo, chi = node.fix_y(node.lo0, node.hi0, idx, vals)
        mine, _, _, _ = node.solve(clo, chi)
        r = linprog(pb.c, A_ub=A[~eq], b_ub=hi[~eq], A_eq=A[eq], b_eq=hi[eq], method="highs",
                    bounds=list(zip(clo[:pb.c.size], np.where(np.isinf(chi[:pb.c.size]), None, chi[:pb.c.size]))))
        ref = float(r.fun) * var_scale(var, "min-variance") if r.status == 0 else np.inf
        assert mine == pytest.approx(ref, rel=1e-7) if np.isfinite(ref) else not np.isfinite(mine)


@pytest.mark.parametrize("seed", range(4))
def test_solve_and_certify_beside_the_seed_proves_the_optimum(seed):
    """The seed solved in a thread while the search runs: same optimum and bound as certifying
    after it, and the wall time covers both."""
    from adaqp.solver.bnb import solve_and_certify
    from adaqp.solver.milp import solve

    model, budget = _model(seed)
    opt = _brute_force(model, budget)
    sol = solve_and_certify(model, lambda: solve(model, budget, solver="greedy"), budget, 0.0, 30.0)
    assert sol.variance == pytest.approx(opt, rel=1e-6) and sol.size["certify_complete"]
    assert sol.size["certified_lower_bound"] <= opt * (1 + 1e-7)
    assert sol.solve_time_s >= sol.size["certify_time_s"] * (1 - 1e-6)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("seed", range(3))
def test_progress_reports_true_lower_bounds(seed, threads):
    """What on_batch shows (adaqp plan --certify's bar) is a lower bound at every batch, with one
    worker (in the caller's thread) or two."""
    model, budget = _model(seed)
    opt = _brute_force(model, budget)
    seen = []
    r = branch_and_bound(model, budget, gap=0.0, time_limit=30.0, threads=threads,
                         on_batch=lambda *a: seen.append(a))
    assert seen and r.complete
    assert all(b[0] <= a[0] for a, b in zip(seen[1:], seen[:-1]))  # elapsed grows
    assert all(lower <= opt * (1 + 1e-7) and lower <= best for _, _, lower, best in seen)
    assert seen[-1][1] <= r.nodes


def test_a_failing_seed_stops_the_search_with_its_error():
    from adaqp.solver.bnb import solve_and_certify

    from adaqp.errors import AdaqpInputError

    model, budget = _model(0)

    def seed():
        raise AdaqpInputError("budget infeasible")

    with pytest.raises(AdaqpInputError, match="budget infeasible"):
        solve_and_certify(model, seed, budget, 0.0, 30.0)


@pytest.mark.parametrize("seed", range(4))
def test_two_workers_find_what_one_finds(seed):
    model, budget = _model(seed)
    one = branch_and_bound(model, budget, gap=0.0, time_limit=30.0, threads=1)
    two = branch_and_bound(model, budget, gap=0.0, time_limit=30.0, threads=2)
    assert one.complete and two.complete
    assert two.variance == pytest.approx(one.variance, rel=1e-9)
    assert two.lower_bound == pytest.approx(one.lower_bound, rel=1e-6)
    # the workers take children as they finish, so the tree's shape may differ by a few nodes from
    # run to run; what it proves may not
    again = branch_and_bound(model, budget, gap=0.0, time_limit=30.0, threads=2)
    assert again.variance == pytest.approx(two.variance, rel=1e-9)
    assert again.lower_bound == pytest.approx(two.lower_bound, rel=1e-6)


def test_workers_solving_side_by_side_return_each_nodes_own_bound():
    """Two threads, each on its own worker (as the search runs them): every bound is that node's
    own (HiGHS releases the GIL; the workers share nothing but the cut pool)."""
    from concurrent.futures import ThreadPoolExecutor

    model, budget = _model(2)
    node = NodeLP(model, budget, workers=2)
    kids = [node.fix_y(node.lo0, node.hi0, i, v) for i in range(3) for v in (1, 0)]
    def on_worker(w):  # a worker's HiGHS serves one thread at a time
        return [(k, node.solve(*kids[k], np.inf, w)[0]) for k in range(w, len(kids), 2)]

    side_by_side = [0.0] * len(kids)
    with ThreadPoolExecutor(2) as ex:
        for part in ex.map(on_worker, range(2)):
            for k, b in part:
                side_by_side[k] = b
    alone = [NodeLP(model, budget).solve(lo, hi)[0] for lo, hi in kids]
    assert side_by_side == pytest.approx(alone, rel=1e-9)


def test_certify_replacing_a_plan_reports_the_searchs_gap():
    """A worse first plan (every group at the narrowest width, said to be 0 % off within its
    formulation) is replaced; its gap then is the certified one, not the stale 0 %."""
    from adaqp.solver.bnb import certify
    from adaqp.solver.milp import solve, variance_matrix

    model, budget = _model(1)
    sol = solve(model, budget, solver="greedy")
    G = model.groups.num_groups
    sol.choice = np.zeros(G, dtype=np.int64)
    sol.variance = float(variance_matrix(model)[np.arange(G), sol.choice].sum())
    sol.gap, sol.size["formulation"] = 0.0, "exact"
    before = sol.variance
    sol = certify(model, sol, budget, 1e-3, 30.0)
    assert sol.variance < before
    assert sol.gap == sol.size["certified_gap"] <= 1e-3 + 1e-12 and sol.size["formulation"] == "branch and bound"
