"""The bit-width MILP on instances whose optimum is known by hand, and against greedy."""

import itertools

import numpy as np
import pytest
from adaqp.costmodel.analytic import ModelShape
from adaqp.costmodel.profile import OPS, HardwareProfile, LinkModel, OpModel
from adaqp.costmodel.workload import PlanStats
from adaqp.solver.groups import Groups
from adaqp.solver.milp import solve
from adaqp.solver.model import build_model

from adaqp.cluster import ClusterSpec, Link
from adaqp.errors import AdaqpInputError


def _free_profile(bw=1e6):
    """Coding and compute cost nothing; the transport moves ``bw`` bytes/s with no latency."""
    ops = {name: OpModel(feats, tuple([0.0] * len(feats))) for name, feats in OPS.items()}
    return HardwareProfile("hand", "spec-derived", "cpu", {"cores": 2, "compute_threads": 1}, ops,
                           {"net": LinkModel(0.0, bw), "allreduce": LinkModel(0.0, 1e9)}, 1.0)


def _hand_instance(V, sizes, bits_set):
    """One channel 0 -> 1 of width 4 whose rows form groups of ``sizes`` with coefficients ``V``."""
    n = sum(sizes)
    pr = np.array([[0, n], [0, 0]])
    stats = PlanStats(np.array([n, 1]), np.array([0, 0]), np.array([n, 1]), np.array([0, n]),
                      np.zeros(2, int), np.ones(2, int), np.array([0, 1]), pr)
    cuts = np.cumsum([0] + list(sizes))
    rows = [np.arange(a, b) for a, b in itertools.pairwise(cuts)]
    groups = Groups(1, pr, (4,), [(0, "fwd", 0, 1)], np.zeros(len(V), int), rows, np.array(V, float), 1)
    cluster = ClusterSpec("local", nodes=1, devices_per_node=1, device="cpu", ranks_per_device=2,
                          intra_link=Link("loopback", 1e9, 0.0))
    shape = ModelShape("gcn", (4, 3), layer_norm=False, dropout=False)
    return build_model(groups, bits_set, stats, shape, "quant", cluster, _free_profile(), "exchange")


@pytest.mark.parametrize("solver", ["cbc", "highs", "greedy"])
def test_budget_for_one_wide_group_goes_to_the_larger_variance(solver):
    # a row of 4 features: 2 bits = 1 + 4 B header, 8 bits = 4 + 4 B; 13 B fit one 8-bit row only
    model = _hand_instance([1.0, 5.0], [1, 1], (2, 8))
    sol = solve(model, 13e-6, solver=solver)
    assert sol.bits.tolist() == [2, 8]
    assert sol.variance == pytest.approx(1.0 / 9 + 5.0 / 255 ** 2)
    assert sol.time_s <= 13e-6 * (1 + 1e-9)  # float sums


def test_budget_at_the_all_widest_time_keeps_every_group_widest():
    model = _hand_instance([3.0, 1.0, 2.0], [2, 1, 3], (2, 4, 8))
    t8 = model.time(np.full(3, 2))
    assert solve(model, t8).bits.tolist() == [8, 8, 8]


def test_infeasible_budget_names_the_smallest_feasible_one():
    model = _hand_instance([1.0, 1.0], [1, 1], (2, 8))
    with pytest.raises(AdaqpInputError, match=r"smallest feasible budget is 1e-05 s"):
        solve(model, 9e-6)
    assert solve(model, 10e-6).bits.tolist() == [2, 2]


def test_lambda_mode_trades_variance_for_time():
    model = _hand_instance([1.0, 5.0], [1, 1], (2, 8))
    assert solve(model, mode="lambda", lam=1.0).bits.tolist() == [8, 8]  # variance only
    assert solve(model, mode="lambda", lam=0.0).bits.tolist() == [2, 2]  # time only


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_milp_never_worse_than_greedy(seed):
    rng = np.random.default_rng(seed)
    G = 12
    model = _hand_instance(rng.lognormal(0, 2, G).tolist(), rng.integers(1, 6, G).tolist(), (2, 4, 8))
    lo, hi = model.time(np.zeros(G, int)), model.time(np.full(G, 2))
    budget = lo + rng.uniform(0.1, 0.9) * (hi - lo)
    milp = solve(model, budget, solver="cbc")
    assert milp.variance <= milp.greedy_variance * (1 + 1e-9)
    assert milp.time_s <= budget * (1 + 1e-9)
    # and here, small enough to enumerate, it is the true optimum
    best = min((model.groups.V * (1 / (2.0 ** np.array([2, 4, 8])[c] - 1) ** 2)).sum()
               for c in (np.array(np.unravel_index(i, (3,) * G)) for i in range(3 ** G))
               if model.time(c) <= budget) if G <= 8 else None
    if best is not None:
        assert milp.variance == pytest.approx(best)


@pytest.mark.parametrize("solver", ["cbc", "highs"])
@pytest.mark.parametrize("seed", [0, 1])
def test_conservative_plan_meets_the_budget_under_the_exact_model(solver, seed):
    from adaqp.costmodel.profile import OpModel

    rng = np.random.default_rng(seed)
    G = 10
    V, sizes = rng.lognormal(0, 2, G).tolist(), rng.integers(1, 6, G).tolist()
    groups = _hand_instance(V, sizes, (2, 4, 8)).groups
    # give the coding ops a per-call constant so the conservative model differs from the exact one
    prof = _free_profile()
    ops = {name: OpModel(m.features, (1e-6,) + m.coef[1:]) if "quantize" in name else m
           for name, m in prof.ops.items()}
    n = sum(sizes)
    pr = np.array([[0, n], [0, 0]])
    stats = PlanStats(np.array([n, 1]), np.array([0, 0]), np.array([n, 1]), np.array([0, n]),
                      np.zeros(2, int), np.ones(2, int), np.array([0, 1]), pr)
    cluster = ClusterSpec("local", nodes=1, devices_per_node=1, device="cpu", ranks_per_device=2,
                          intra_link=Link("loopback", 1e9, 0.0))
    shape = ModelShape("gcn", (4, 3), layer_norm=False, dropout=False)
    from dataclasses import replace
    model = build_model(groups, (2, 4, 8), stats, shape, "quant", cluster, replace(prof, ops=ops), "exchange")
    lo, hi = model.time(np.zeros(G, int)), model.time(np.full(G, 2))
    assert model.ysets  # the coding ops have per-call constants: the formulations differ
    budget = lo + 3 * len(model.ysets) * 1e-6 + rng.uniform(0.2, 0.8) * (hi - lo)
    sol = solve(model, budget, solver=solver, fixed_costs="conservative", gap=1e-4)
    assert sol.size["formulation"] == "conservative"
    assert model.time(sol.choice) <= budget * (1 + 1e-9)  # the exact cost model
    assert sol.size["formulation_gap"] <= 1e-3 + 1e-9
    assert sol.variance <= sol.greedy_variance * (1 + 1e-9)
    exact = solve(model, budget, solver=solver, fixed_costs="exact")
    assert exact.size["formulation"] == "exact" and model.time(exact.choice) <= budget * (1 + 1e-9)


def test_fixed_costs_must_be_known():
    model = _hand_instance([1.0, 5.0], [1, 1], (2, 8))
    with pytest.raises(AdaqpInputError, match="fixed_costs"):
        solve(model, 13e-6, fixed_costs="loose")
