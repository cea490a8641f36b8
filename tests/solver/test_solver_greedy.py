"""The greedy helpers and the model's plan time, on the eight-rank instance of the compact tests."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from adaqp.solver.greedy import _apply, _moves, _raise_back, _step_saving, greedy
from adaqp.solver.milp import variance_matrix

_spec = importlib.util.spec_from_file_location("_compact_tests", Path(__file__).with_name("test_solver_compact.py"))
_ct = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ct)


@pytest.fixture(scope="module")
def inst():
    model, budget = _ct._multi_channel()
    return model, budget, variance_matrix(model)


def test_plan_time_is_the_sum_of_its_terms(inst):
    """``time`` stacks the terms' rows into one product; each term is still max(floor, its rows)."""
    model, _, _ = inst
    G, nb = model.groups.num_groups, len(model.bits_set)
    rng = np.random.default_rng(0)
    plans = [np.full(G, j) for j in range(nb)] + [rng.integers(0, nb, G) for _ in range(20)]
    for c in plans:
        z = model.z(c)
        assert model.time(c) == sum(t.value(z) for t in model.terms)  # to the last bit: see time()


@pytest.mark.parametrize("lowest", [0, 1])
def test_moves_list_every_step_down_once_least_variance_per_second_first(inst, lowest):
    model, _, var = inst
    G, nb = var.shape
    choice = np.random.default_rng(1).integers(0, nb, G)
    g, j = _moves(model, var, choice, lowest)
    expected = {(a, b) for a in range(G) for b in range(lowest, int(choice[a]))}
    assert len(g) == len(expected) and set(zip(g.tolist(), j.tolist())) == expected
    cost = _step_saving(model, choice).reshape(-1, nb)
    saved = cost[g, j + 1] - cost[g, j]
    ratio = np.where(saved > 0, (var[g, j] - var[g, j + 1]) / np.where(saved > 0, saved, 1), np.inf)
    assert np.all(ratio[1:] >= ratio[:-1])  # (not np.diff: moves that save nothing are inf, inf - inf is nan)
    # taking a prefix lowers each group to the lowest width it names, never raises one
    c = _apply(choice, (g, j), len(g) // 2)
    assert np.all(c <= choice)
    for a in set(g[:len(g) // 2].tolist()):
        assert c[a] == min(j[:len(g) // 2][g[:len(g) // 2] == a].min(), choice[a])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_raise_back_spends_budget_without_exceeding_it(seed):
    """On an instance without coding constants (every single raise costs its own seconds)."""
    spec = importlib.util.spec_from_file_location("_milp_tests", Path(__file__).with_name("test_solver_milp.py"))
    mt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mt)
    rng = np.random.default_rng(seed)
    G = 40
    model = mt._hand_instance(rng.lognormal(0, 2, G).tolist(), rng.integers(1, 6, G).tolist(), (2, 4, 8))
    var = variance_matrix(model)
    lo, hi = model.time(np.zeros(G, int)), model.time(np.full(G, 2))
    budget = lo + 0.5 * (hi - lo)
    start = np.zeros(G, dtype=np.int64)
    raised = _raise_back(model, var, start, budget)
    assert np.all(raised >= start) and np.any(raised > start)
    assert model.time(raised) <= budget * (1 + 1e-9)
    plan = greedy(model, var, budget)
    assert model.time(plan) <= budget * (1 + 1e-9)
    assert var[np.arange(G), plan].sum() <= var[np.arange(G), raised].sum() * (1 + 1e-12)
