"""Width patterns: which widths each rank codes per exchange (the ``y`` indicators), fixed before the MILP.

Why fix them: every width a rank codes in an exchange costs the coding op's per-call constant on that
rank's compute segment (``durations.encode_mixed_s`` codes a message width by width). With ``y`` free
the LP relaxation pays a fraction of a constant and mixes widths, so it is weak (19 % below the
best plan on the 10,000-group benchmark) and branch and bound on ``y`` is slow. With ``y`` fixed what is
left is an assignment with resource rows that CBC/HiGHS close quickly; the plan is then optimal for
its pattern, and the pattern is chosen among candidates by their y-fixed LP relaxations.

Candidates: the LP's own (``y >= 0.5``, ``y > 0``), every width, the greedy plan's, and *uniform*
patterns, where all ranks code the same widths in an exchange. Why uniform: a compute segment takes
as long as its slowest rank, and ranks are near-balanced, so an extra width pays off only when every
rank codes it (a constant charged to one rank is charged to the segment). Each exchange gets the
width that carries most of its rows in the LP relaxation; then, one exchange at a time, the other
widths the relaxation uses there are added. On the benchmark this finds variance 860 where the LP's
own patterns give 916 (the LP spreads a little of every exchange onto 8 bits, which no single
rounding of ``y`` reproduces).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sp

TIE = 1e-9  # relative: two patterns' LP values this close are equal
USED_SHARE = 1e-3  # a width counts as used in an exchange when it carries this share of its rows


def fix_y(pb, model, y: np.ndarray):
    """``pb`` with every coding-intercept indicator fixed; ``y = 0`` forbids its widths."""
    lb, ub = pb.lb.copy(), pb.ub.copy()
    ny = len(model.ysets)
    lb[pb.nx:pb.nx + ny] = ub[pb.nx:pb.nx + ny] = y
    for i in np.flatnonzero(np.asarray(y) < 0.5):
        ub[model.ysets[i]] = 0.0
    return replace(pb, lb=lb, ub=ub)


def _yset_exchange(model) -> tuple[list, np.ndarray]:
    """Per y indicator: its exchange ``(layer, direction)`` and width index."""
    nb = len(model.bits_set)
    keys = [model.groups.key(int(cols[0]) // nb)[:2] for cols in model.ysets]
    widths = np.array([int(cols[0]) % nb for cols in model.ysets], dtype=np.int64)
    return keys, widths


def uniform_patterns(model, x_lp: np.ndarray) -> list:
    """y vectors where all ranks code the same widths per exchange (see the module doc)."""
    keys, widths = _yset_exchange(model)
    if not keys:
        return []
    nb, G = len(model.bits_set), model.groups.num_groups
    x = np.clip(np.asarray(x_lp[:model.nx]).reshape(G, nb), 0.0, 1.0)
    rows = x * model.groups.counts[:, None]  # rows sent at each width, per group
    gkey = [model.groups.key(g)[:2] for g in range(G)]
    exchanges = sorted(set(keys))
    use = {e: np.zeros(nb) for e in exchanges}
    for g, e in enumerate(gkey):
        if e in use:
            use[e] += rows[g]
    base = {e: {int(u.argmax())} for e, u in use.items()}
    extra = {e: set(np.flatnonzero(u > USED_SHARE * u.sum()).tolist()) - base[e] for e, u in use.items()}
    allowed = [base]
    for e in exchanges:
        if extra[e]:  # this exchange also codes its other used widths; the rest keep one
            allowed.append({**base, e: base[e] | extra[e]})
    return [np.array([1.0 if w in a[k] else 0.0 for k, w in zip(keys, widths)]) for a in allowed]


def best_pattern(pb, model, x_lp: np.ndarray, warm: np.ndarray, lp):
    """``(problem with y fixed, its LP bound)`` over the candidates whose y-fixed LP is feasible,
    lowest LP first; None when none is (the greedy pattern always is when greedy fits).
    ``lp(pf[, cutoff=best so far])`` gives ``(objective, _)``, or ``(None, _)`` when ``pf``'s LP
    is infeasible or proved above the cutoff (:class:`BoundsLP`)."""
    ny = len(model.ysets)
    y_lp = x_lp[pb.nx:pb.nx + ny]
    cands = [(y_lp >= 0.5).astype(float), (y_lp > 1e-6).astype(float), np.ones(ny), model.z(warm)[pb.nx:]]
    cands += uniform_patterns(model, x_lp)
    best, seen = None, set()
    for y in cands:
        key = y.astype(bool).tobytes()
        if key in seen:
            continue
        seen.add(key)
        pf = fix_y(pb, model, y)
        obj, _ = lp(pf, cutoff=best[1]) if best is not None else lp(pf)
        # (a tie within the LPs' tolerance keeps the earlier pattern, whichever LP solved it)
        if obj is not None and (best is None or obj < best[1] - TIE * max(abs(best[1]), 1.0)):
            best = (pf, obj)
    return best


class BoundsLP:
    """LP relaxations of ``pb`` under other column bounds (the width patterns' y-fixed problems),
    each by HiGHS's own package from the previous one's basis where highspy is installed: the
    10,000-group benchmark's nine pattern LPs take 0.5 s instead of SciPy's 1.4 s from scratch,
    with the same objectives (to 1e-12); the full LP takes 0.25 s against SciPy's 0.42 s, with the
    same solution. Without highspy, or without a verdict from the warm start: ``fallback``
    (``milp._lp``). Returns ``(objective, None)`` (the callers rank patterns by their bound
    alone), ``(objective, values)`` when asked, or ``(None, None)``."""

    def __init__(self, pb, fallback):
        from adaqp.solver.lpstatus import has_highspy, highs_lp, new_highs

        self.h, self.fallback = None, fallback
        if not has_highspy():
            return
        import highspy

        self.hs, self.n = highspy, pb.c.size
        A = sp.vstack([pb.A_ub, pb.A_eq]).tocsr()
        rlo = np.r_[np.full(pb.A_ub.shape[0], -np.inf), pb.b_eq]
        self.h = new_highs(highspy)
        self.h.passModel(highs_lp(highspy, pb.c, pb.lb, pb.ub, A, rlo, np.r_[pb.b_ub, pb.b_eq]))
        self.cols = np.arange(self.n, dtype=np.int32)

    def __call__(self, pf, values: bool = False, cutoff: float = np.inf):
        """``(objective, None)``, or ``(objective, column values)`` with ``values``; ``(None, None)``
        also when dual simplex proves the LP above ``cutoff`` before it ends (the best pattern so
        far: the all-on pattern's LP took 0.2 s of the nine's 0.5 s to reach 407 where 117 was
        known; nine now take 0.19 s)."""
        if self.h is None:
            return self._fallback(pf, values)
        hs = self.hs
        self.h.changeColsBounds(self.n, self.cols, pf.lb, np.where(np.isinf(pf.ub), hs.kHighsInf, pf.ub))
        self.h.setOptionValue("objective_bound", float(cutoff) if np.isfinite(cutoff) else hs.kHighsInf)
        self.h.run()
        status = self.h.getModelStatus()
        if status in (hs.HighsModelStatus.kInfeasible, hs.HighsModelStatus.kObjectiveBound):
            return None, None
        if status != hs.HighsModelStatus.kOptimal:  # no verdict from the warm start: afresh
            self.h.clearSolver()
            return self._fallback(pf, values)
        x = np.asarray(self.h.getSolution().col_value) if values else None
        return float(self.h.getInfo().objective_function_value), x

    def _fallback(self, pf, values: bool):
        obj, x = self.fallback(pf)
        return obj, (x if values else None)


def disaggregated_lp_bound(model, budget: float) -> float | None:
    """A lower bound on the min-variance problem, tighter than the LP ``solve`` reports: one row
    ``x[g, j] <= y`` per group and indicator instead of the aggregated ``sum x <= |set| y`` (a
    fractional y then limits every group of its set, not only their total). Valid for the exact
    problem, as every integer plan satisfies both forms; on the 10,000-group benchmark it lies 1.35 %
    below the best plan against 13.6 % for the aggregated LP. It is the root of :mod:`bnb`'s search,
    solved here by SciPy's HiGHS interface from scratch (a cross-check of that warm-started model)."""
    from scipy.optimize import linprog

    from adaqp.solver.nodelp import disaggregated_rows
    from adaqp.solver.milp import build_problem, var_scale, variance_matrix

    var = variance_matrix(model)
    pb = build_problem(model, var, "min-variance", budget, 0.0)
    A, lo, hi = disaggregated_rows(pb, model.ysets)
    eq = np.isfinite(lo)
    r = linprog(pb.c, A_ub=A[~eq], b_ub=hi[~eq], A_eq=A[eq], b_eq=hi[eq],
                bounds=list(zip(pb.lb, pb.ub)), method="highs")
    if r.status != 0:
        return None
    return float(r.fun) * var_scale(var, "min-variance")  # undo build_problem's scaling
