"""Branch and bound over the coding-intercept indicators, on tiny instances solved by enumeration."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from adaqp.solver.bnb import NodeLP, branch_and_bound
from adaqp.solver.milp import variance_matrix

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


def test_node_relaxation_charges_one_width_per_family_when_none_is_fixed():
    model, budget = _model(0)
    node = NodeLP(model, budget)
    state = np.full(node.ny, -1, np.int8)
    assert node.charges(state).sum() == len(node.families)  # each rank codes at least one width
    state[node.families[0][1]] = 0  # forbid one width of the first family: the others still charge once
    assert node.charges(state)[node.families[0]].sum() == 1
    state[node.families[0]] = [1, 0, 1]  # fixed widths are charged, nothing else in that family
    assert list(node.charges(state)[node.families[0]]) == [1, 0, 1]
    ub = node.x_upper(state)
    assert (ub[model.ysets[node.families[0][1]]] == 0).all()


def test_infeasible_budget_gives_no_plan():
    model, budget = _model(1)
    lo = model.time(np.zeros(model.groups.num_groups, int))
    res = branch_and_bound(model, lo * 0.5, gap=0.0, time_limit=5.0)
    assert res.choice is None and res.variance == np.inf
