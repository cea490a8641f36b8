"""Width patterns and lower bounds on tiny instances whose optimum is found by enumeration."""

import itertools

import numpy as np
import pytest
from adaqp.costmodel.analytic import ModelShape
from adaqp.costmodel.profile import OPS, HardwareProfile, LinkModel, OpModel
from adaqp.costmodel.workload import PlanStats
from adaqp.solver.groups import Groups
from adaqp.solver.milp import solve, variance_matrix
from adaqp.solver.model import build_model
from adaqp.solver.patterns import disaggregated_lp_bound, uniform_patterns

from adaqp.cluster import ClusterSpec, Link

BITS = (2, 4, 8)


def _model(seed: int, G: int = 6):
    """One channel 0 -> 1 (4 features) at 1 MB/s; coding costs 1 us per call, nothing per row, so
    every width a rank codes pays a constant: the y indicators matter."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, G)
    n = int(sizes.sum())
    pr = np.array([[0, n], [0, 0]])
    stats = PlanStats(np.array([n, 1]), np.array([0, 0]), np.array([n, 1]), np.array([0, n]),
                      np.zeros(2, int), np.ones(2, int), np.array([0, 1]), pr)
    cuts = np.cumsum([0] + sizes.tolist())
    rows = [np.arange(a, b) for a, b in itertools.pairwise(cuts)]
    groups = Groups(1, pr, (4,), [(0, "fwd", 0, 1)], np.zeros(G, int), rows, rng.lognormal(0, 2, G), 1)
    ops = {name: OpModel(f, ((1e-6 if "quantize" in name else 0.0),) + (0.0,) * (len(f) - 1))
           for name, f in OPS.items()}
    prof = HardwareProfile("hand", "spec-derived", "cpu", {"cores": 2, "compute_threads": 1}, ops,
                           {"net": LinkModel(0.0, 1e6), "allreduce": LinkModel(0.0, 1e9)}, 1.0)
    cluster = ClusterSpec("local", nodes=1, devices_per_node=1, device="cpu", ranks_per_device=2,
                          intra_link=Link("loopback", 1e9, 0.0))
    shape = ModelShape("gcn", (4, 3), layer_norm=False, dropout=False)
    model = build_model(groups, BITS, stats, shape, "quant", cluster, prof, "exchange")
    lo, hi = model.time(np.zeros(G, int)), model.time(np.full(G, 2))
    return model, lo + rng.uniform(0.2, 0.8) * (hi - lo) + 2e-6


def _brute_force(model, budget):
    var = variance_matrix(model)
    G = var.shape[0]
    best = np.inf
    for c in itertools.product(range(len(BITS)), repeat=G):
        c = np.array(c)
        if model.time(c) <= budget * (1 + 1e-9):
            best = min(best, float(var[np.arange(G), c].sum()))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_lower_bounds_never_exceed_the_enumerated_optimum(seed):
    model, budget = _model(seed)
    assert model.ysets  # per-call constants: the problem has its fixed costs
    opt = _brute_force(model, budget)
    tight = disaggregated_lp_bound(model, budget)
    assert tight is not None and tight <= opt * (1 + 1e-7)
    sol = solve(model, budget, solver="highs")
    full_lp = sol.variance * (1 - sol.size["gap_full_lp"])  # the bound gap_full_lp was measured against
    assert full_lp <= tight * (1 + 1e-7)  # disaggregating only tightens
    assert sol.variance >= opt * (1 - 1e-9)


@pytest.mark.parametrize("solver", ["cbc", "highs"])
@pytest.mark.parametrize("seed", range(4))
def test_exact_plan_is_feasible_and_no_worse_than_greedy(solver, seed):
    model, budget = _model(seed)
    sol = solve(model, budget, solver=solver, fixed_costs="exact")
    assert model.time(sol.choice) <= budget * (1 + 1e-9)  # the exact cost model, intercepts included
    assert sol.variance <= sol.greedy_variance * (1 + 1e-9)


def test_uniform_patterns_give_every_rank_the_same_widths_per_exchange():
    model, budget = _model(0)
    nb, G = len(BITS), model.groups.num_groups
    x = np.zeros(model.nx)
    x[np.arange(G) * nb + 1] = 1.0  # the LP sent everything at 4 bits ...
    x[2] = 0.5  # ... except half of group 0 at 8
    x[1] = 0.5
    pats = uniform_patterns(model, x)
    widths = [int(cols[0]) % nb for cols in model.ysets]
    on = [{w for w, v in zip(widths, y) if v} for y in pats]
    assert on == [{1}, {1, 2}]  # the most used width, then the exchange with its other used width too
    for y in pats:  # sender and receiver families agree
        for w in range(nb):
            assert len({v for ww, v in zip(widths, y) if ww == w}) == 1


@pytest.mark.parametrize("seed", range(4))
def test_warm_pattern_lps_match_scipys_from_scratch(seed):
    """Every y pattern's LP, solved one after another from the previous basis, has SciPy's
    objective; an empty pattern (every width shut) is None for both; without HiGHS's package the
    fallback answers."""
    from adaqp.solver.milp import _lp, _problem
    from adaqp.solver.patterns import BoundsLP, fix_y

    model, budget = _model(seed)
    pb = _problem(model, variance_matrix(model), "min-variance", budget, 0.0)
    warm, rng = BoundsLP(pb, _lp), np.random.default_rng(seed)
    assert warm.h is not None  # the test suite installs highspy: the warm path is the one tested
    ny = len(model.ysets)
    for y in [np.ones(ny), np.zeros(ny)] + [rng.integers(0, 2, ny).astype(float) for _ in range(6)]:
        pf = fix_y(pb, model, y)
        ref, _ = _lp(pf)
        got, _ = warm(pf)
        assert (got is None) == (ref is None)
        if ref is not None:
            assert got == pytest.approx(ref, rel=1e-9, abs=1e-12)
    full, x = BoundsLP(pb, _lp)(pb, values=True)  # the full LP, whose solution guides the patterns
    ref, x_ref = _lp(pb)
    assert full == pytest.approx(ref, rel=1e-9, abs=1e-12) and x.shape == x_ref.shape
    assert pb.c @ x == pytest.approx(full, rel=1e-9, abs=1e-12)
    pf = fix_y(pb, model, np.ones(ny))  # a cutoff below a pattern's LP: never reported below it
    ref, _ = _lp(pf)
    for cutoff in (ref - 1.0, ref - 1e-3 * abs(ref)):
        warm(fix_y(pb, model, np.zeros(ny)))  # start from elsewhere
        got, _ = warm(pf, cutoff=cutoff)
        assert got is None or got >= cutoff
    assert warm(pf, cutoff=abs(ref) * 2 + 1.0)[0] == pytest.approx(ref, rel=1e-9, abs=1e-12)
    plain = BoundsLP(pb, lambda pf: (-1.0, None))
    plain.h = None  # as where highspy is absent
    assert plain(fix_y(pb, model, np.ones(ny))) == (-1.0, None)
