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
    root, z, _ = node.solve(node.lo0, node.hi0)
    assert root == pytest.approx(disaggregated_lp_bound(model, budget), rel=1e-7)
    assert (z[node.ys] >= -1e-9).all() and (z[node.ys] <= 1 + 1e-9).all()
    i = int(np.argmax(z[node.ys]))  # forbid the most used indicator
    lo, hi = node.fix_y(node.lo0, node.hi0, i, 0)
    b, zc, _ = node.solve(lo, hi)
    if zc is not None:
        assert np.abs(zc[model.ysets[i]]).max() <= 1e-9 and b >= root - 1e-9 * abs(root)


@pytest.mark.parametrize("seed", range(3))
def test_a_cutoff_never_reports_below_itself_nor_above_the_lp(seed):
    model, budget = _model(seed)
    node = NodeLP(model, budget)
    _, z, _ = node.solve(node.lo0, node.hi0)
    lo, hi = node.fix_y(node.lo0, node.hi0, int(np.argmax(z[node.ys])), 0)
    exact, _, _ = node.solve(lo, hi)
    if not np.isfinite(exact):
        return  # forbidding that width leaves no plan: nothing to cut
    for cut in (exact * 0.9, exact * 1.1):
        node.solve(node.lo0, node.hi0)  # back at the root's basis: the child is a warm re-solve
        b, zc, _ = node.solve(lo, hi, cutoff=cut)
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
