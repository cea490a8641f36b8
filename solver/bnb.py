"""Branch and bound over the coding-intercept indicators ``y``: a certified gap for ``min-variance``.

Why: every width a rank codes in an exchange pays the coding op's per-call constant (``y``). The
budget makes the problem a knapsack whose items carry fixed costs, so any convex relaxation mixes
plans: on the 10,000-group benchmark the LP turns 8 bits on "30 %" in each of four exchanges,
paying 30 % of each constant, where a real plan pays one exchange in full (1.35 % apart). Only
branching on ``y`` closes that.

Node relaxation: the *disaggregated* LP - ``x`` and ``y`` continuous, one row ``x[g, j] <= y`` per
group and indicator (not the aggregated ``sum x <= |set| y``; written with one cap column per
channel and width, see :func:`_capped_rows`), the epigraph rows of every term and the budget - with
the ``y`` fixed by branching as column bounds (``y = 0`` also forbids its ``x``). Each worker thread
owns one HiGHS object for the whole search; each node changes bounds and re-solves from that
worker's last basis, stopped early once its objective passes the incumbent (HiGHS's
``objective_bound``); a node's two children are solved side by side. By default the node
relaxation is :mod:`compact`'s (the same bound from channels' totals, a tenth of the columns)
wherever the model allows it; this module's :class:`NodeLP` otherwise. A child whose time floor
(:class:`TimeFloor`) misses the budget is dropped without an LP; one HiGHS cannot decide
(:mod:`lpstatus`) stays open at its parent's bound.

Search: best first; branch on the free ``y`` nearest 0.5; reduced-cost fixing after every node (a
column whose reduced cost exceeds the distance to the incumbent keeps its bound in the subtree).
When a node's LP has integral ``y``, HiGHS solves its MILP with those ``y`` fixed (an incumbent,
and when every ``y`` is fixed by branching, the node's own bound). The certified lower bound is the
least bound of the open nodes and of those closed within ``gap``: every plan lies in one of them.
"""

from __future__ import annotations

import heapq
import os
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from adaqp.solver.greedy import _raise_back
from adaqp.solver.lpstatus import NODE_LIMIT_S, ROOT_LIMIT_S, new_highs, run_checked, status_bound
from adaqp.solver.milp import _problem, var_scale, variance_matrix
from adaqp.solver.model import LinearModel

from adaqp.errors import require

BUDGET_SLACK = 1e-9  # the same relative slack the solver allows when it checks a plan's time
INTEGRAL = 1e-6  # a y this close to 0 or 1 counts as integral
RELAXATIONS = ("compact", "disaggregated")


@dataclass
class BnbResult:
    choice: np.ndarray | None  # best plan found (width index per group), None when none fits
    variance: float  # its variance (inf when none)
    lower_bound: float  # certified: no plan meeting the budget has less variance
    gap: float  # (variance - lower_bound) / variance
    nodes: int  # node LPs solved
    branch_vars: int  # y indicators (the branching variables)
    leaves_milp: int  # node MILPs solved with y fixed
    complete: bool  # the tree was exhausted within ``gap`` (else the time limit stopped it)
    solve_time_s: float


class NodeLP:
    """The disaggregated LP of ``model`` under ``budget`` as warm-started HiGHS models (one per
    worker thread); a node is a pair of column-bound vectors ``(lo, hi)`` over ``[x, y, t, u]``."""

    def __init__(self, model: LinearModel, budget: float, workers: int = 1):
        import highspy

        self.model, self.var, self.highspy = model, variance_matrix(model), highspy
        self.G, self.nb = self.var.shape
        self.vscale = var_scale(self.var, "min-variance")
        pb = _problem(model, self.var, "min-variance", budget * (1 + BUDGET_SLACK), 0.0)
        self.nx, self.ny = pb.nx, len(model.ysets)
        self.ys = slice(self.nx, self.nx + self.ny)
        A, lo, hi, ncap = _capped_rows(pb, model.ysets)
        self.n = pb.c.size + ncap
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = self.n, A.shape[0]
        lp.col_cost_ = np.r_[pb.c, np.zeros(ncap)]
        self.lo0 = np.r_[np.asarray(pb.lb, float), np.zeros(ncap)]
        self.hi0 = np.r_[np.where(np.isinf(pb.ub), highspy.kHighsInf, pb.ub).astype(float), np.ones(ncap)]
        lp.col_lower_, lp.col_upper_ = self.lo0, self.hi0
        lp.row_lower_, lp.row_upper_ = np.where(np.isinf(lo), -highspy.kHighsInf, lo), hi
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = A.indptr, A.indices, A.data
        self.lp, self.integer = lp, np.r_[np.asarray(pb.integer), np.zeros(ncap, bool)]
        self.integrality = [highspy.HighsVarType.kInteger if k else highspy.HighsVarType.kContinuous
                            for k in self.integer]
        self.workers = [self._highs() for _ in range(max(1, int(workers)))]
        self.cols = np.arange(self.n, dtype=np.int32)
        self.limit_s = NODE_LIMIT_S

    def _highs(self):
        h = new_highs(self.highspy)
        h.setOptionValue("presolve", "off")  # re-solves start from the last basis anyway
        h.passModel(self.lp)
        return h

    def fix_y(self, lo: np.ndarray, hi: np.ndarray, idx, values):
        """Child bounds with indicators ``idx`` fixed to ``values`` (0 forbids their widths)."""
        idx, values = np.atleast_1d(idx), np.broadcast_to(np.asarray(values, float), np.shape(np.atleast_1d(idx)))
        lo, hi = lo.copy(), hi.copy()
        lo[self.nx + idx] = hi[self.nx + idx] = values
        for i in idx[values == 0]:
            hi[self.model.ysets[i]] = 0.0
        return lo, hi

    def solve(self, lo: np.ndarray, hi: np.ndarray, cutoff: float = np.inf, worker: int = 0):
        """``(bound in variance units, z, reduced costs)``; ``(inf, None, None)`` when the node is
        empty; ``(cutoff, None, None)`` when its LP provably exceeds ``cutoff``; ``(nan, None,
        None)`` when HiGHS could not tell (the caller keeps the parent's bound for it)."""
        h, hs = self.workers[worker], self.highspy
        h.changeColsBounds(self.n, self.cols, lo, hi)
        h.setOptionValue("objective_bound", cutoff / self.vscale if np.isfinite(cutoff) else hs.kHighsInf)
        status, s = run_checked(h, hs, self.limit_s)  # run() releases the GIL: workers side by side
        if status != hs.HighsModelStatus.kOptimal:
            return status_bound(status, hs, cutoff), None, None
        sol = s.getSolution()
        value = float(s.getInfo().objective_function_value) * self.vscale
        return value, np.asarray(sol.col_value), np.asarray(sol.col_dual) * self.vscale

    def solve_many(self, nodes: list, cutoff: float = np.inf) -> list:
        return solve_side_by_side(self, nodes, cutoff)

    def allowed(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """[G, nb] the widths each group may still take at this node."""
        return hi[:self.nx].reshape(self.G, self.nb) > 0

    def rounded(self, z: np.ndarray) -> np.ndarray:
        """Each group at the width carrying most of it in the LP."""
        return z[:self.nx].reshape(self.G, self.nb).argmax(1)

    def milp(self, lo: np.ndarray, hi: np.ndarray, time_limit: float):
        """The node with every ``y`` fixed (by ``lo == hi``) and ``x`` binary, by HiGHS's MIP:
        ``(dual bound, choice or None)``."""
        hs = self.highspy
        lp = self.lp
        lp.col_lower_, lp.col_upper_ = lo, hi  # (assigned whole: the binding returns copies)
        lp.integrality_ = self.integrality
        h = new_highs(hs)
        h.setOptionValue("time_limit", max(time_limit, 0.05))
        h.setOptionValue("mip_rel_gap", 1e-6)
        h.passModel(lp)
        h.run()
        lp.integrality_ = []
        lp.col_lower_, lp.col_upper_ = self.lo0, self.hi0
        info = h.getInfo()
        if h.getModelStatus() == hs.HighsModelStatus.kInfeasible:
            return np.inf, None
        bound = float(info.mip_dual_bound) * self.vscale if np.isfinite(info.mip_dual_bound) else -np.inf
        if info.primal_solution_status == 2:  # feasible
            x = np.asarray(h.getSolution().col_value[:self.nx]).reshape(self.G, self.nb)
            return bound, x.argmax(1)
        return bound, None


class TimeFloor:
    """A quick lower bound on the time of every plan of a node: each term's rows with every group
    at its cheapest allowed width and the indicators fixed at 1 paying their intercepts. A node
    whose floor misses the budget holds no plan, and its LP (slow to prove infeasible: seconds on
    a 393-group instance) is skipped."""

    def __init__(self, model: LinearModel):
        nx, nb, G = model.nx, len(model.bits_set), model.groups.num_groups
        self.const = sum(t.floor for t in model.terms if not t.const.size)
        self.terms = []
        for t in model.terms:
            if not t.const.size:
                continue
            A = t.A[:, :nx].tocoo()
            pairs, inv = np.unique(A.row.astype(np.int64) * G + A.col // nb, return_inverse=True)
            vals = np.zeros((pairs.size, nb))  # a width a group does not store costs 0 on that row
            vals[inv, A.col % nb] = A.data
            self.terms.append((t.floor, t.const, pairs // G, pairs % G, vals, t.A[:, nx:].tocsr()))

    def seconds(self, allowed: np.ndarray, y_lo: np.ndarray) -> float:
        """``allowed``: [G, nb] widths each group may take; ``y_lo``: the indicators' lower bounds."""
        if not allowed.any(axis=1).all():
            return np.inf
        total = self.const
        for floor, const, row, grp, vals, Ay in self.terms:
            least = np.where(allowed[grp], vals, np.inf).min(axis=1)
            rows = const + np.bincount(row, weights=least, minlength=const.size) + Ay @ y_lo
            total += max(floor, float(rows.max()))
        return total


def _relaxation(model: LinearModel, budget: float, workers: int, kind: str):
    from adaqp.solver.compact import CompactLP, NotCompact

    require(kind in RELAXATIONS, f"relaxation must be one of {RELAXATIONS}, got {kind!r}")
    if kind == "compact":
        try:
            return CompactLP(model, budget, workers)
        except NotCompact:
            pass
    return NodeLP(model, budget, workers)


def solve_side_by_side(node, nodes: list, cutoff: float) -> list:
    """``node.solve`` for each ``(lo, hi)``, node k on worker k (threads when there are several;
    each worker keeps the basis of its own last node, so a run is reproducible)."""
    if len(nodes) == 1 or len(node.workers) == 1:
        return [node.solve(lo, hi, cutoff, k % len(node.workers)) for k, (lo, hi) in enumerate(nodes)]
    from concurrent.futures import ThreadPoolExecutor

    assert len(nodes) <= len(node.workers)
    with ThreadPoolExecutor(len(nodes)) as ex:
        return list(ex.map(lambda k: node.solve(*nodes[k], cutoff, k), range(len(nodes))))


def _disaggregated_rows(pb, ysets: list):
    """Rows ``[terms and budget; x[g, j] - y_i <= 0 per member; assignment]`` with their bounds;
    ``pb.A_ub`` starts with the aggregated links (one per y), which the member rows replace."""
    ny, n = len(ysets), pb.c.size
    sizes = np.array([c.size for c in ysets], dtype=np.int64)
    cols = np.concatenate(ysets) if ny else np.zeros(0, np.int64)
    r = np.arange(cols.size)
    link = sp.csr_matrix((np.r_[np.ones(cols.size), -np.ones(cols.size)],
                          (np.r_[r, r], np.r_[cols, pb.nx + np.repeat(np.arange(ny), sizes)])), shape=(cols.size, n))
    A = sp.vstack([pb.A_ub[ny:], link, pb.A_eq]).tocsc()
    lo = np.r_[np.full(A.shape[0] - pb.A_eq.shape[0], -np.inf), pb.b_eq]
    hi = np.r_[pb.b_ub[ny:], np.zeros(cols.size), pb.b_eq]
    return A, lo, hi


def _capped_rows(pb, ysets: list):
    """The disaggregated rows in fewer rows, the same LP: x columns that lie in exactly the same
    indicators' sets (in the model: one channel at one width, in its sender's encode set and its
    receiver's decode set) share a cap column ``u`` with ``x <= u`` and ``u <= y_i`` for each such
    indicator, instead of ``x <= y_i`` per member and indicator. ``min_i y_i`` is a feasible ``u``
    and every ``u`` lies below it, so ``x`` sees the same bounds. On the 10,000-group benchmark
    70,062 rows become 41,817 and the root LP solves in 3.1 s instead of 5.1 s. Returns ``(A, row
    lower, row upper, number of u columns)``; the u columns follow ``[x, y, t]``."""
    ny, n0 = len(ysets), pb.c.size
    owners: dict = {}
    for i, cols in enumerate(ysets):
        for c in np.asarray(cols).tolist():
            owners.setdefault(c, []).append(i)
    caps: dict = {}  # tuple of indicators -> cap column number
    xs = np.fromiter(owners, dtype=np.int64, count=len(owners))
    cap_of = np.array([caps.setdefault(tuple(owners[c]), len(caps)) for c in xs.tolist()], dtype=np.int64)
    ncap, n = len(caps), n0 + len(caps)
    r = np.arange(xs.size)
    x_rows = sp.csr_matrix((np.r_[np.ones(xs.size), -np.ones(xs.size)], (np.r_[r, r], np.r_[xs, n0 + cap_of])),
                           shape=(xs.size, n))
    pairs = np.array([(k, i) for sig, k in caps.items() for i in sig], dtype=np.int64).reshape(-1, 2)
    r = np.arange(pairs.shape[0])
    y_rows = sp.csr_matrix((np.r_[np.ones(r.size), -np.ones(r.size)],
                            (np.r_[r, r], np.r_[n0 + pairs[:, 0], pb.nx + pairs[:, 1]])), shape=(r.size, n))
    pad = lambda M: sp.hstack([M, sp.csr_matrix((M.shape[0], ncap))])  # noqa: E731
    A = sp.vstack([pad(pb.A_ub[ny:]), x_rows, y_rows, pad(pb.A_eq)]).tocsc()
    lo = np.r_[np.full(A.shape[0] - pb.A_eq.shape[0], -np.inf), pb.b_eq]
    hi = np.r_[pb.b_ub[ny:], np.zeros(xs.size + r.size), pb.b_eq]
    return A, lo, hi, ncap


def _rc_fix(lo, hi, z, d, slack: float, binary: np.ndarray):
    """Reduced-cost fixing: a binary column at a bound whose reduced cost exceeds ``slack`` (the
    incumbent's target minus the node's bound) keeps that bound in every better plan below."""
    lo, hi = lo.copy(), hi.copy()
    at_lo = binary & (z <= lo + 1e-9) & (d > slack)
    at_hi = binary & (z >= hi - 1e-9) & (d < -slack)
    hi[at_lo], lo[at_hi] = lo[at_lo], hi[at_hi]
    return lo, hi


def _round(node, z: np.ndarray, budget: float):
    """An integer plan from an LP solution (``node.rounded``), then leftover budget spent
    greedily; None when it misses the budget under the exact model."""
    choice = _raise_back(node.model, node.var, node.rounded(z), budget)
    return choice if node.model.time(choice) <= budget * (1 + BUDGET_SLACK) else None


def branch_and_bound(model: LinearModel, budget: float, gap: float = 1e-3, time_limit: float = 5.0,
                     incumbent: np.ndarray | None = None, threads: int | None = None,
                     relaxation: str = "compact") -> BnbResult:
    """Best-first branch and bound over ``y`` (module doc). ``incumbent``: a plan to start from.
    ``threads``: LP workers (default: 2 when the machine has 2 cores): a node's two children are
    solved side by side. ``relaxation``: ``compact`` (:mod:`compact`, where the model allows it)
    or ``disaggregated``."""
    t0 = time.perf_counter()
    node = _relaxation(model, budget, threads or min(2, os.cpu_count() or 1), relaxation)
    G, ys, binary = node.G, node.ys, node.integer
    floor = TimeFloor(model)
    best = {"c": None, "v": np.inf}
    counts = {"nodes": 0, "milps": 0}

    def offer(choice):
        if choice is not None and model.time(choice) <= budget * (1 + BUDGET_SLACK):
            v = float(node.var[np.arange(G), choice].sum())
            if v < best["v"]:
                best["c"], best["v"] = np.asarray(choice), v

    def target():
        return best["v"] * (1 - gap)

    def lps(nodes):
        counts["nodes"] += len(nodes)
        return node.solve_many(nodes, target())

    offer(incumbent)
    heap, order, closed_lb = [], 0, np.inf
    # the root on every worker (side by side), so that each starts warm; a node may then take a
    # few times the root's time before HiGHS is asked afresh (lpstatus)
    node.limit_s, t_root = ROOT_LIMIT_S, time.perf_counter()
    bound, z, d = node.solve_many([(node.lo0, node.hi0)] * len(node.workers), target())[0]
    node.limit_s = max(NODE_LIMIT_S, 4 * (time.perf_counter() - t_root))
    counts["nodes"] += 1
    if z is not None:
        heap.append((bound, order, node.lo0, node.hi0, z, d))
    elif np.isnan(bound):  # HiGHS failed at the root: open, with no bound yet
        heap.append((-np.inf, order, node.lo0, node.hi0, None, None))
    elif np.isfinite(bound):  # root already above the incumbent's target
        closed_lb = bound
    while heap and time.perf_counter() - t0 < time_limit:
        bound, _, lo, hi, z, d = heapq.heappop(heap)
        if bound >= target():  # best-first: every open node is within gap too
            closed_lb = min(closed_lb, bound)
            break
        if z is None:  # HiGHS gave no verdict on this node's LP: branch on a free y without one
            z, d = np.where(lo < hi, 0.5, lo), np.zeros_like(lo)
        lo, hi = _rc_fix(lo, hi, z, d, target() - bound, binary)
        y, free = z[ys], lo[ys] < hi[ys]
        frac = np.flatnonzero(free & (y > INTEGRAL) & (y < 1 - INTEGRAL))
        if frac.size == 0:  # y integral: this node's best plan with these y, by HiGHS's MIP
            offer(_round(node, z, budget))
            fixed_lo, fixed_hi = node.fix_y(lo, hi, np.flatnonzero(free), np.round(y[free]))
            mb, mc = node.milp(fixed_lo, fixed_hi, time_limit - (time.perf_counter() - t0))
            counts["milps"] += 1
            offer(mc)
            if not free.any():  # every y fixed by branching: the MILP settled this node
                closed_lb = min(closed_lb, max(bound, mb))
                continue
            if bound >= target():
                closed_lb = min(closed_lb, bound)
                continue
            frac = np.flatnonzero(free)  # other y values may still do better: keep branching
        i = int(frac[np.argmin(np.abs(y[frac] - 0.5))])
        kids = [node.fix_y(lo, hi, i, v) for v in (1, 0)]
        kids = [k for k in kids if floor.seconds(node.allowed(*k), k[0][ys]) <= budget * (1 + BUDGET_SLACK)]
        for (clo, chi), (b, zc, dc) in zip(kids, lps(kids) if kids else []):
            if zc is None and not np.isnan(b):  # empty, or past the cutoff
                if np.isfinite(b):
                    closed_lb = min(closed_lb, b)
                continue
            order += 1  # (an unknown LP, nan: open, at the parent's bound, without a solution)
            heapq.heappush(heap, (bound if np.isnan(b) else max(b, bound), order, clo, chi, zc, dc))
    complete = not heap or heap[0][0] >= target()
    lb = min([closed_lb, best["v"]] + [h[0] for h in heap])
    v = best["v"]
    g = (v - lb) / v if np.isfinite(v) and v > 0 else (0.0 if v == 0 else np.inf)
    return BnbResult(best["c"], v, lb, max(0.0, g), counts["nodes"], node.ny, counts["milps"], complete,
                     time.perf_counter() - t0)


def certify(model: LinearModel, sol, budget: float, gap: float, seconds: float):
    """Run the search for ``seconds`` from ``sol`` (a :class:`milp.Solution`): a plan it finds that
    is better replaces ``sol``'s; ``sol.size`` gains ``certified_lower_bound``, ``certified_gap``
    (against that bound: it holds for the whole problem, unlike ``gap``), ``certify_complete``,
    ``certify_nodes`` and ``certify_time_s``."""
    r = branch_and_bound(model, budget, gap=gap, time_limit=seconds, incumbent=sol.choice)
    if r.choice is not None and r.variance < sol.variance:
        sol.choice, sol.bits = r.choice, np.asarray(model.bits_set)[r.choice]
        sol.variance, sol.time_s, sol.status = r.variance, model.time(r.choice), f"{sol.status}; improved by bnb"
    sol.size.update({"certified_lower_bound": r.lower_bound, "certified_gap": r.gap,
                     "certify_complete": r.complete, "certify_nodes": r.nodes, "certify_time_s": r.solve_time_s})
    sol.solve_time_s += r.solve_time_s
    return sol
