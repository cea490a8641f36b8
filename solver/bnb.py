"""Branch and bound over the coding-intercept indicators ``y``: a certified gap for ``min-variance``.

Why: every width a rank codes in an exchange pays the coding op's per-call constant (``y``). Any
convex relaxation lets a rank code "30 % of a width" for 30 % of that constant, so LP bounds stall
about 1.4 % below the best plans (see :mod:`patterns`). Here ``y`` is never fractional: each node
of the tree fixes some ``y`` to 0 (the width is forbidden to that rank: its ``x`` columns get upper
bound 0) or to 1 (the constant is charged), and relaxes the rest ("free": allowed, not charged).

Node relaxation, valid for every plan the node contains:
- the constants of ``y`` fixed to 1 are charged; free ``y`` are charged nothing, except that a
  *family* (one rank, exchange and side: encode or decode) whose ``y`` are all unfixed is charged
  its cheapest non-forbidden width's constant: its groups must be sent at some width, so the rank
  codes at least one (only when every width of the bit set has an indicator, else a width without
  a constant could carry them);
- ``x`` continuous, so what is left is an LP over ``x`` and the term epigraph variables ``t`` whose
  row bounds and column bounds are all that change from node to node: HiGHS re-solves it from the
  previous basis in milliseconds (one ``Highs`` object for the whole search).
The LP is exact for the plan when every family uses only charged widths (or, with none fixed,
exactly one width of the charged constant). Such a *leaf* is rounded to an incumbent; if the
rounding is not within ``gap`` of the leaf's bound, HiGHS solves the leaf's MILP (y fixed, x
binary) and its dual bound replaces the LP's.

The certified lower bound is the least bound of the open nodes, the leaves and the nodes pruned
within ``gap`` of the incumbent; every plan of the problem lies in one of them.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from adaqp.solver.greedy import _raise_back
from adaqp.solver.milp import var_scale, variance_matrix
from adaqp.solver.model import LinearModel
from adaqp.solver.patterns import _yset_exchange

USED = 1e-7  # an x value above this counts as sent at that width
BUDGET_SLACK = 1e-9  # the same relative slack the solver allows when it checks a plan's time


@dataclass
class BnbResult:
    choice: np.ndarray | None  # best plan found (width index per group), None when none fits
    variance: float  # its variance (inf when none)
    lower_bound: float  # certified: no plan meeting the budget has less variance
    gap: float  # (variance - lower_bound) / variance
    nodes: int  # node LPs solved
    branch_vars: int  # y indicators (the branching variables)
    leaves_milp: int  # leaves closed by HiGHS's MILP
    complete: bool  # the tree was exhausted within ``gap`` (else the time limit stopped it)
    solve_time_s: float


class NodeLP:
    """The node relaxation of ``model`` under ``budget``: one warm-started HiGHS LP over ``[x, t]``."""

    def __init__(self, model: LinearModel, budget: float):
        import highspy

        self.model, self.var = model, variance_matrix(model)
        self.G, self.nb = self.var.shape
        self.nx, self.ny = model.nx, len(model.ysets)
        self.vscale, self.tscale = var_scale(self.var, "min-variance"), budget  # coefficients near 1
        live = [t for t in model.terms if t.const.size]
        const = sum(t.floor for t in model.terms if not t.const.size)
        A = sp.vstack([t.A for t in live]).tocsr() / self.tscale
        self.Ax, self.Ay = A[:, :self.nx], A[:, self.nx:].tocsr()
        self.cc = np.concatenate([t.const for t in live]) / self.tscale
        self.R, nt = A.shape[0], len(live)
        term = np.concatenate([np.full(t.const.size, k) for k, t in enumerate(live)])
        T = sp.csr_matrix((-np.ones(self.R), (np.arange(self.R), term)), shape=(self.R, nt))
        assign = sp.csr_matrix((np.ones(self.nx), (np.repeat(np.arange(self.G), self.nb), np.arange(self.nx))),
                               shape=(self.G, self.nx))
        M = sp.vstack([sp.hstack([self.Ax, T]), sp.hstack([sp.csr_matrix((1, self.nx)), np.ones((1, nt))]),
                       sp.hstack([assign, sp.csr_matrix((self.G, nt))])]).tocsc()
        self.rlo = np.r_[np.full(self.R, -np.inf), -np.inf, np.ones(self.G)]
        self.rhi = np.r_[-self.cc, (budget * (1 + BUDGET_SLACK) - const) / self.tscale, np.ones(self.G)]
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = self.nx + nt, M.shape[0]
        lp.col_cost_ = np.r_[self.var.ravel() / self.vscale, np.zeros(nt)]
        lp.col_lower_ = np.r_[np.zeros(self.nx), [t.floor / self.tscale for t in live]]
        lp.col_upper_ = np.r_[np.ones(self.nx), np.full(nt, np.inf)]
        lp.row_lower_, lp.row_upper_ = self.rlo, self.rhi
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = M.indptr, M.indices, M.data
        self.lp, self.highspy = lp, highspy
        self.h = highspy.Highs()
        self.h.setOptionValue("output_flag", False)
        self.h.passModel(lp)
        self._families()

    def _families(self):
        """y indicators grouped by (row of the rank's compute segment, exchange): one rank's
        encode or decode family; ``coef[i]``: the constant y ``i`` charges (scaled)."""
        keys, _ = _yset_exchange(self.model)
        Ayc = self.Ay.tocsc()
        rows = [int(Ayc.indices[Ayc.indptr[i]]) if Ayc.indptr[i + 1] > Ayc.indptr[i] else -1 for i in range(self.ny)]
        self.coef = np.array([Ayc.data[Ayc.indptr[i]:Ayc.indptr[i + 1]].sum() for i in range(self.ny)])
        fam: dict = {}
        for i, (r, k) in enumerate(zip(rows, keys)):
            fam.setdefault((r, k), []).append(i)
        self.families = [np.array(v) for v in fam.values()]
        self.family_of = np.zeros(self.ny, np.int64)
        for f, members in enumerate(self.families):
            self.family_of[members] = f

    def charges(self, state: np.ndarray) -> np.ndarray:
        """The y constants the node charges (see the module doc)."""
        charge = (state == 1).astype(float)
        for members in self.families:
            if len(members) == self.nb and not (state[members] == 1).any():
                open_ = members[state[members] != 0]
                if open_.size:
                    charge[open_[np.argmin(self.coef[open_])]] = 1.0
        return charge

    def x_upper(self, state: np.ndarray) -> np.ndarray:
        ub = np.ones(self.nx)
        for i in np.flatnonzero(state == 0):
            ub[self.model.ysets[i]] = 0.0
        return ub

    def solve(self, state: np.ndarray):
        """``(bound in variance units, x [G, nb])`` or ``(inf, None)`` when the node is empty."""
        hi = self.rhi.copy()
        hi[:self.R] = -(self.cc + self.Ay @ self.charges(state))
        self.h.changeRowsBounds(self.R, np.arange(self.R, dtype=np.int32), self.rlo[:self.R], hi[:self.R])
        self.h.changeColsBounds(self.nx, np.arange(self.nx, dtype=np.int32), np.zeros(self.nx), self.x_upper(state))
        self.h.run()
        if self.h.getModelStatus() != self.highspy.HighsModelStatus.kOptimal:
            return np.inf, None
        x = np.asarray(self.h.getSolution().col_value[:self.nx]).reshape(self.G, self.nb)
        return float(self.h.getInfo().objective_function_value) * self.vscale, x

    def milp(self, state: np.ndarray, time_limit: float):
        """The leaf with x binary (HiGHS MIP): ``(dual bound, choice or None)``."""
        lp = self.lp
        hi = self.rhi.copy()  # (assigned whole: the binding returns copies, slices would be lost)
        hi[:self.R] = -(self.cc + self.Ay @ self.charges(state))
        lp.row_upper_ = hi
        lp.col_upper_ = np.r_[self.x_upper(state), np.full(lp.num_col_ - self.nx, np.inf)]
        lp.integrality_ = [self.highspy.HighsVarType.kInteger] * self.nx + \
            [self.highspy.HighsVarType.kContinuous] * (lp.num_col_ - self.nx)
        h = self.highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("time_limit", max(time_limit, 0.05))
        h.setOptionValue("mip_rel_gap", 1e-6)
        h.passModel(lp)
        h.run()
        info = h.getInfo()
        bound = float(info.mip_dual_bound) * self.vscale if np.isfinite(info.mip_dual_bound) else -np.inf
        if h.getModelStatus() == self.highspy.HighsModelStatus.kInfeasible:
            return np.inf, None
        if info.primal_solution_status == 2:  # feasible
            x = np.asarray(h.getSolution().col_value[:self.nx]).reshape(self.G, self.nb)
            return bound, x.argmax(1)
        return bound, None


def _family_status(node: NodeLP, state: np.ndarray, x: np.ndarray):
    """Per y: the mass of rows the LP sends through it, and whether each family is exact (pays
    for every width it uses)."""
    mass = np.array([x.ravel()[cols].sum() for cols in node.model.ysets])
    used = mass > USED
    violated = np.zeros(node.ny)  # mass sent through widths the node does not charge
    charge = node.charges(state)
    for members in node.families:
        fixed = (state[members] == 1).any()
        free_used = used[members] & (charge[members] == 0)
        if not fixed and used[members].sum() == 1 and free_used.any():  # one width, cheapest charged
            c_used = node.coef[members][used[members]][0]
            if np.isclose(c_used, node.coef[members][charge[members] == 1].max()):
                continue
        violated[members] = np.where(free_used, mass[members], 0.0)
    return mass, violated


def _round(node: NodeLP, x: np.ndarray, budget: float):
    """An integer plan from an LP solution: each group at its largest-mass width among the widths
    the LP sends it at, fractional groups at their narrowest used width, then leftover budget spent
    greedily; None when it misses the budget under the exact model."""
    frac = (x > USED).sum(1) > 1
    choice = x.argmax(1)
    choice[frac] = np.argmax(x[frac] > USED, axis=1)
    choice = _raise_back(node.model, node.var, choice, budget)
    if node.model.time(choice) > budget * (1 + BUDGET_SLACK):
        return None
    return choice


def branch_and_bound(model: LinearModel, budget: float, gap: float = 1e-3, time_limit: float = 5.0,
                     incumbent: np.ndarray | None = None) -> BnbResult:
    """Best-first branch and bound over ``y`` (module doc). ``incumbent``: a plan to start from."""
    t0 = time.perf_counter()
    node = NodeLP(model, budget)
    G = node.G
    best_c, best_v = None, np.inf

    def offer(choice):
        nonlocal best_c, best_v
        if choice is None or model.time(choice) > budget * (1 + BUDGET_SLACK):
            return
        v = float(node.var[np.arange(G), choice].sum())
        if v < best_v:
            best_c, best_v = np.asarray(choice), v

    offer(incumbent)
    heap, counter, nodes, milps = [], 0, 0, 0
    closed_lb = np.inf  # least bound among nodes set aside within ``gap`` (leaves, pruned)
    root = np.full(node.ny, -1, np.int8)  # -1 free, 0 forbidden, 1 charged
    bound, x = node.solve(root)
    nodes += 1
    if x is not None:
        heapq.heappush(heap, (bound, counter, root, x))
    it = 0
    while heap and time.perf_counter() - t0 < time_limit:
        bound, _, state, x = heapq.heappop(heap)
        it += 1
        if bound >= best_v * (1 - gap):  # best-first: every open node is within gap too
            closed_lb = min(closed_lb, bound)
            break
        mass, violated = _family_status(node, state, x)
        if not violated.any():  # a leaf: the LP's plan pays exactly what the model charges
            offer(_round(node, x, budget))
            if bound >= best_v * (1 - gap):
                closed_lb = min(closed_lb, bound)
                continue
            mb, mc = node.milp(state, time_limit - (time.perf_counter() - t0))
            milps += 1
            offer(mc)
            bound = max(bound, mb)
            if mc is not None:  # the MILP may send rows through free widths it was not charged for
                mass, violated = _family_status(node, state, np.eye(node.nb)[mc])
            if mc is None or not violated.any() or bound >= best_v * (1 - gap):
                closed_lb = min(closed_lb, bound)
                continue
        elif it % 16 == 1:  # an incumbent from the pattern this LP uses (every few nodes)
            b2, x2 = node.solve((mass > USED).astype(np.int8))
            nodes += 1
            if x2 is not None:
                offer(_round(node, x2, budget))
        fam = node.family_of[np.argmax(violated)]  # the family sending most through free widths
        members = node.families[fam]
        cand = members[violated[members] > 0]
        i = cand[np.argmin(mass[cand])]  # its least-used uncharged width: the likeliest to drop
        for v in (0, 1):
            child = state.copy()
            child[i] = v
            b, xc = node.solve(child)
            nodes += 1
            if xc is None:
                continue
            if b >= best_v * (1 - gap):
                closed_lb = min(closed_lb, b)
                continue
            counter += 1
            heapq.heappush(heap, (max(b, bound), counter, child, xc))
    complete = not heap or heap[0][0] >= best_v * (1 - gap)
    lb = min([closed_lb, best_v] + [h[0] for h in heap])
    g = (best_v - lb) / best_v if np.isfinite(best_v) and best_v > 0 else (0.0 if best_v == 0 else np.inf)
    return BnbResult(best_c, best_v, lb, max(0.0, g), nodes, node.ny, milps, complete,
                     time.perf_counter() - t0)
