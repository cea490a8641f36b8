"""The bit-width MILP over a :class:`LinearModel`, solved by CBC or HiGHS (through PuLP) or greedily.

Columns ``[x, y, t]``: ``x[g, j]`` binary (group g at ``bits_set[j]``), ``y`` binary coding-intercept
indicators, ``t[k]`` >= 0 one per model term that depends on x (``t[k] >= floor_k``).
Rows:
- ``sum_j x[g, j] = 1`` for every group;
- ``sum(x in the y's set) <= |set| * y`` (a rank pays an op's constant when it codes that width);
- ``A_i z + c_i <= t[k]`` for every row i of term k (the term's max, epigraph form);
- ``sum_k t[k] + constant terms <= budget`` (mode ``min-variance``).
Objective: ``sum V_g * level(b_j) x[g, j]`` (``min-variance``); ``lambda * var / var_max +
(1 - lambda) * time / time_max`` (``lambda``, no budget); ``sum t`` (``min-time``, to name the
smallest feasible budget). Times are scaled by the budget (or the widest plan's time) and
variances by :func:`var_scale`, so coefficients sit near 1 for the solvers' tolerances.
"""

from __future__ import annotations

import re
import tempfile
import warnings
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from adaqp.solver.cbc import solve_mps
from adaqp.solver.greedy import greedy, raise_back
from adaqp.solver.groups import level_factor
from adaqp.solver.lpstatus import has_highspy
from adaqp.solver.model import LinearModel
from adaqp.solver.patterns import BoundsLP, best_pattern, fix_y

from adaqp.errors import AdaqpInputError, require

SOLVERS = ("cbc", "highs", "greedy")
MODES = ("min-variance", "lambda", "min-time")
FIXED_COSTS = ("conservative", "exact")
SLACK = 1e-9  # relative slack when checking a solver's answer against the budget (float sums)


@dataclass
class Solution:
    choice: np.ndarray  # width index per group
    bits: np.ndarray  # width per group
    variance: float
    time_s: float  # the linear model's time of this choice
    solver: str
    status: str
    solve_time_s: float
    gap: float | None  # relative, against the best lower bound known
    size: dict = field(default_factory=dict)  # groups, variables, constraints
    greedy_variance: float | None = None


@dataclass
class Problem:
    """A MILP as arrays: ``min c z`` s.t. ``A_ub z <= b_ub``, ``A_eq z = b_eq``, ``lb <= z <= ub``,
    ``z`` integer where ``integer``."""

    c: np.ndarray
    A_ub: sp.csr_matrix
    b_ub: np.ndarray
    A_eq: sp.csr_matrix
    b_eq: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    integer: np.ndarray
    nx: int
    t_scale: float  # seconds per unit of t


def variance_matrix(model: LinearModel) -> np.ndarray:
    """[G, nb] variance of each group at each width."""
    return model.groups.V[:, None] * level_factor(model.bits_set)[None, :]


def var_scale(var: np.ndarray, mode: str) -> float:
    """``lambda``: the narrowest plan's variance (the reference's normalisation); else the least
    positive uniform plan's: by the narrowest one the objective sat near 0.015 and the solvers'
    1e-7 tolerances hid 0.1 % differences (HiGHS called plans 0.1 % worse than CBC's optimal)."""
    tot = var.sum(0)
    pos = tot[tot > 0]
    return max(float(tot[0]), 1e-300) if mode == "lambda" else (float(pos.min()) if pos.size else 1.0)


def build_problem(model: LinearModel, var: np.ndarray, mode: str, budget: float | None, lam: float) -> Problem:
    """The MILP of ``mode`` (module doc) as arrays: columns ``[x, y, t]``, times scaled by the
    budget (or the widest plan's time), the variance by :func:`var_scale`."""
    G, nb = var.shape
    nx, ny = model.nx, len(model.ysets)
    live = [t for t in model.terms if t.const.size]
    const = sum(t.floor for t in model.terms if not t.const.size)
    nt, n = len(live), nx + ny + len(live)
    t_scale = budget if budget else max(model.time(np.full(G, nb - 1)), 1e-12)
    v_scale = var_scale(var, mode)
    c = np.zeros(n)
    if mode != "min-time":
        c[:nx] = var.ravel() / v_scale * (lam if mode == "lambda" else 1.0)
    if mode != "min-variance":
        c[nx + ny:] = 1.0 if mode == "min-time" else (1.0 - lam)
    blocks, rhs = [], []
    if ny:  # sum x - |set| y <= 0 per indicator (small; solve() fixes y anyway)
        sizes = np.array([cols.size for cols in model.ysets])
        blocks.append(sp.csr_matrix((np.r_[np.ones(sizes.sum()), -sizes],
                                     (np.r_[np.repeat(np.arange(ny), sizes), np.arange(ny)],
                                      np.r_[np.concatenate(model.ysets), nx + np.arange(ny)])), shape=(ny, n)))
        rhs.append(np.zeros(ny))
    for k, t in enumerate(live):  # A z / ts - t_k <= -c / ts
        R = t.const.size
        tk = sp.csr_matrix((-np.ones(R), (np.arange(R), np.full(R, nx + ny + k))), shape=(R, n))
        blocks.append(sp.hstack([t.A / t_scale, sp.csr_matrix((R, nt))]).tocsr() + tk)
        rhs.append(-t.const / t_scale)
    if mode == "min-variance":
        blocks.append(sp.csr_matrix((np.ones(nt), (np.zeros(nt, int), nx + ny + np.arange(nt))), shape=(1, n)))
        rhs.append(np.array([(budget - const) / t_scale]))
    A_ub = sp.vstack(blocks).tocsr() if blocks else sp.csr_matrix((0, n))
    A_eq = sp.csr_matrix((np.ones(nx), (np.repeat(np.arange(G), nb), np.arange(nx))), shape=(G, n))
    lb = np.r_[np.zeros(nx + ny), [t.floor / t_scale for t in live]]
    ub = np.r_[np.ones(nx + ny), np.full(nt, np.inf)]
    integer = np.r_[np.ones(nx + ny, bool), np.zeros(nt, bool)]
    return Problem(c, A_ub, np.concatenate(rhs) if rhs else np.zeros(0), A_eq, np.ones(G), lb, ub, integer,
                   nx, t_scale)


_problem = build_problem  # the name tests/solver (patterns, bnb) test it by


def _lp(pb: Problem):
    """The LP relaxation (HiGHS dual simplex): ``(objective, values)``, a lower bound and a guide."""
    from scipy.optimize import linprog

    r = linprog(pb.c, A_ub=pb.A_ub, b_ub=pb.b_ub, A_eq=pb.A_eq, b_eq=pb.b_eq,
                bounds=list(zip(pb.lb, pb.ub)), method="highs")
    return (float(r.fun), r.x) if r.status == 0 else (None, None)


def _milp_solve(pb: Problem, solver: str, time_limit: float, gap: float):
    """Solve the MILP: CBC (PuLP's bundled binary) through :mod:`cbc`'s MPS file, HiGHS through
    PuLP's interface. Returns (z, status, solver's own lower bound or None)."""
    if solver == "cbc":
        with tempfile.TemporaryDirectory(prefix="adaqp-cbc-") as tmp:  # CBC's log holds its bound
            log = Path(tmp) / "cbc.log"
            values, status, offset = solve_mps(pb.c, pb.A_ub, pb.b_ub, pb.A_eq, pb.b_eq, pb.lb, pb.ub, pb.integer,
                                               time_limit, gap, log)
            return values, status, (_cbc_bound(log.read_text(), gap, offset) if log.exists() else None)
    import highspy
    import pulp

    from adaqp.solver.lpstatus import new_highs

    n = pb.c.size
    prob = pulp.LpProblem("adaqp_bits", pulp.LpMinimize)
    with warnings.catch_warnings():  # PuLP 3.x deprecates the constructor PuLP 2.x needs
        warnings.simplefilter("ignore", DeprecationWarning)
        z = _variables(pulp, pb, n)
    nz = np.flatnonzero(pb.c)
    prob += pulp.LpAffineExpression([(z[i], float(pb.c[i])) for i in nz])
    for A, b, eq in ((pb.A_ub, pb.b_ub, False), (pb.A_eq, pb.b_eq, True)):
        for i in range(A.shape[0]):
            a, e = A.indptr[i], A.indptr[i + 1]
            expr = pulp.LpAffineExpression([(z[j], float(v)) for j, v in zip(A.indices[a:e], A.data[a:e])])
            prob += pulp.LpConstraint(expr, pulp.LpConstraintEQ if eq else pulp.LpConstraintLE, rhs=float(b[i]))
    new_highs(highspy)  # HiGHS prints its banner once per process, from C++: spend it quietly
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        prob.solve(pulp.HiGHS(msg=False, timeLimit=time_limit, gapRel=gap))
    values = np.array([v.varValue if v.varValue is not None else np.nan for v in z])
    info = prob.solverModel.getInfo()
    bound = float(info.mip_dual_bound) if np.isfinite(info.mip_dual_bound) else None
    return values, pulp.LpStatus[prob.status], bound


def _variables(pulp, pb: Problem, n: int) -> list:
    return [pulp.LpVariable(f"z{i}", lowBound=pb.lb[i], upBound=None if np.isinf(pb.ub[i]) else pb.ub[i],
                            cat="Integer" if pb.integer[i] else "Continuous") for i in range(n)]


def _cbc_bound(text: str, gap: float, offset: float = 0.0) -> float | None:
    """CBC's lower bound from its log: the last 'best possible'; a completed search proves the
    objective within ``gap`` of optimal. ``offset``: the objective of the columns CBC was not
    given (:func:`cbc.solve_mps`), added back."""
    m = re.findall(r"best possible (-?[\d.eE+-]+)", text)
    bound = float(m[-1]) + offset if m else None
    obj = re.findall(r"Objective value:\s*(-?[\d.eE+-]+)", text)
    if "Search completed" in text and obj:
        proven = float(obj[-1]) * (1 - gap) + offset
        bound = proven if bound is None else max(bound, proven)
    return bound


def _choice(values, G: int, nb: int) -> np.ndarray | None:
    if values is None or np.isnan(values[:G * nb]).any():
        return None
    return np.asarray(values[:G * nb]).reshape(G, nb).argmax(1)


def _objective(pb: Problem, model: LinearModel, choice: np.ndarray) -> float:
    """The scaled objective of a choice, with every t at its term's value."""
    z = model.z(choice)
    t = [term.value(z) / pb.t_scale for term in model.terms if term.const.size]
    return float(pb.c @ np.concatenate([z, t]))


def _gap(obj: float, bound: float | None) -> float | None:
    if bound is None:
        return None
    return max(0.0, obj - bound) / max(abs(obj), 1e-12)


def _min_time(model: LinearModel, var: np.ndarray, solver: str, time_limit: float):
    """The fastest assignment found and its time (names the smallest feasible budget)."""
    G, nb = var.shape
    cands = [np.full(G, j) for j in range(nb)]
    if solver != "greedy" and G:
        values, _, _ = _milp_solve(build_problem(model, var, "min-time", None, 0.0), solver, time_limit, 1e-4)
        c = _choice(values, G, nb)
        if c is not None:
            cands.append(c)
    best = min(cands, key=model.time)
    return best, model.time(best)


def solve(model: LinearModel, budget: float | None = None, mode: str = "min-variance", solver: str = "cbc",
          time_limit: float = 30.0, gap: float = 1e-3, lam: float = 0.5,
          fixed_costs: str = "exact") -> Solution:
    """Pick one width per group. ``budget``: seconds of the model's time (``min-variance``).

    ``fixed_costs`` says how the coding ops' per-call constants (the y indicators) are handled
    (default ``"exact"``; on the 10,000-group benchmark the conservative model over-charges about
    1.4 ms of a 4.8 ms slack and ends far worse):

    - ``"conservative"``: every rank pays the constant of every width of the bit set in every
      (exchange, side) where it codes rows, whichever widths it ends up using (all y fixed to 1).
      An upper bound on the true time, so its plans meet the budget under the exact model; what is
      left is a pure MILP (assignment + resource rows) solved to ``gap`` against the solver's own
      bound for *that* formulation. The budget the unused constants free is then spent greedily
      under the exact model. If the conservative problem is infeasible (the budget lies below the
      all-narrowest plan plus every constant), the ``"exact"`` path is taken.
    - ``"exact"``: two stages: a width pattern (which widths each rank codes per exchange, the y)
      is chosen among candidates by their y-fixed LP relaxations (:mod:`patterns`), then the MILP
      with y fixed picks every group's width; ``gap`` is against the y-fixed problem's bound.

    Either way the greedy answer is kept when it is better. ``size`` holds ``formulation``,
    ``formulation_gap`` (the solver's answer to it against its own bound, before the raise and the
    greedy comparison), ``gap_full_lp`` (against the full LP relaxation: a true lower bound of the
    exact problem, weak as a fractional y pays a fraction of an intercept) and ``greedy_gap`` /
    ``greedy_gap_full_lp`` (the greedy answer, same bounds)."""
    require(mode in MODES, f"mode must be one of {MODES}, got {mode!r}")
    require(solver in SOLVERS, f"solver must be one of {SOLVERS}, got {solver!r}")
    require(solver != "highs" or has_highspy(), "solver highs needs HiGHS's Python package: pip install highspy")
    require(fixed_costs in FIXED_COSTS, f"fixed_costs must be one of {FIXED_COSTS}, got {fixed_costs!r}")
    require(mode != "min-variance" or (budget is not None and budget > 0), "min-variance needs a positive budget")
    require(0.0 <= lam <= 1.0, f"lambda must lie in [0, 1], got {lam}")
    var, bits = variance_matrix(model), np.asarray(model.bits_set)
    G, nb = var.shape
    t0 = time.perf_counter()
    if G == 0:  # nothing is exchanged: the trivial plan
        return Solution(np.zeros(0, int), np.zeros(0, int), 0.0, model.time(np.zeros(0, int)), solver,
                        "trivial", 0.0, 0.0, {"groups": 0, "variables": 0, "constraints": 0}, 0.0)
    warm = greedy(model, var, budget) if mode == "min-variance" else np.full(G, nb - 1)
    if warm is None:
        fastest, least = _min_time(model, var, solver, time_limit)
        if least > budget:
            raise AdaqpInputError(f"time budget {budget:.6g} s is infeasible even at the narrowest widths; "
                                  f"the smallest feasible budget is {least:.6g} s")
        warm = fastest
    pb = build_problem(model, var, mode, budget, lam)
    size = {"groups": G, "variables": int(pb.c.size), "constraints": int(pb.A_ub.shape[0] + pb.A_eq.shape[0]),
            "formulation": "greedy"}
    choice, status, bounds = warm, "greedy", []
    # the full LP by HiGHS's package too where it is installed (the patterns' LPs, chained from one
    # another, get a fresh copy: from the full LP's basis they took 0.65 s instead of 0.5 s)
    lp_full, x_lp = BoundsLP(pb, _lp)(pb, values=True) if solver != "greedy" else _lp(pb)
    if solver != "greedy" and x_lp is not None:
        found = None
        if fixed_costs == "conservative":
            pc = fix_y(pb, model, np.ones(len(model.ysets)))
            obj_c, _ = _lp(pc)
            if obj_c is not None:
                found, size["formulation"] = (pc, obj_c), "conservative"
        if found is None:
            found = best_pattern(pb, model, x_lp, warm, BoundsLP(pb, _lp))
            size["formulation"] = "exact"
        if found is not None:  # columns the formulation fixes (y, forbidden x) are constants
            size["free_variables"] = int((~np.isclose(found[0].lb, found[0].ub)).sum())
        values, status, bound, lp_fixed = None, "no feasible width pattern", None, None
        if found is not None:
            values, status, bound = _milp_solve(found[0], solver, time_limit, gap)
            lp_fixed = found[1]
        bounds = [b for b in (bound, lp_fixed) if b is not None]
        c = _choice(values, G, nb)
        if c is not None and bound is not None:  # the solver's proof on the formulation it solved
            size["formulation_gap"] = _gap(_objective(pb, model, c), bound)
        if c is not None and model.time(c) <= (budget or np.inf) * (1 + SLACK) and \
                _objective(pb, model, c) <= _objective(pb, model, warm):
            choice = c  # else keep the greedy answer (time limit, tolerances)
            if mode == "min-variance":  # the fixed y may leave budget unused: spend it
                choice = raise_back(model, var, choice, budget)
        else:
            status, bounds = f"{status}; greedy kept", []
    obj = _objective(pb, model, choice)
    size["gap_full_lp"] = _gap(obj, lp_full)
    warm_obj = _objective(pb, model, warm)
    size["greedy_gap_full_lp"] = _gap(warm_obj, lp_full)
    size["greedy_gap"] = _gap(warm_obj, max(bounds)) if bounds else size["greedy_gap_full_lp"]
    return Solution(choice, bits[choice], float((var[np.arange(G), choice]).sum()), model.time(choice), solver,
                    status, time.perf_counter() - t0, _gap(obj, max(bounds)) if bounds else size["gap_full_lp"],
                    size, float(var[np.arange(G), warm].sum()))

