"""Greedy bit-width assignment: the fallback, and the MILP's warm start and yardstick.

Start with every group at its widest width. If that does not fit the budget, lower groups one
width step at a time in the order of least variance added per second saved, where a step's saving
is read off the rows of the linear model that are binding at the start (resources and ranks that
set each term), plus a small share of its saving everywhere so non-binding groups still have an
order. The time is monotone in the number of steps taken along that order, so the shortest
feasible prefix is found by bisection with the exact model; it is repeated once from the result,
as the binding rows may have moved.
"""

from __future__ import annotations

import numpy as np
from adaqp.solver.model import LinearModel


def _step_saving(model: LinearModel, choice: np.ndarray) -> np.ndarray:
    """[nx] seconds each x column costs in the rows binding at ``choice`` (+1e-3 of all rows)."""
    z = model.z(choice)
    w = np.zeros(model.num_z)
    for t in model.terms:
        if t.const.size == 0:
            continue
        val = t.A @ z + t.const
        if val.max() >= t.floor:
            w += np.asarray(t.A[int(val.argmax())].todense()).ravel()
        w += 1e-3 * np.asarray(t.A.sum(0)).ravel()
    return w[:model.nx]


def _moves(model: LinearModel, var: np.ndarray, choice: np.ndarray, lowest: int):
    """Every single-width step down from ``choice``, best (least variance per second) first, as
    arrays ``(group, width stepped to)``; ties go to the lower group, then the wider step."""
    nb = len(model.bits_set)
    cost = _step_saving(model, choice).reshape(-1, nb)
    steps = np.maximum(choice - lowest, 0)
    g = np.repeat(np.arange(choice.size), steps)
    j = np.repeat(choice, steps) - (np.arange(g.size) - np.repeat(np.cumsum(steps) - steps, steps))
    saved = cost[g, j] - cost[g, j - 1]
    added = var[g, j - 1] - var[g, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(saved > 0, added / np.where(saved > 0, saved, 1.0), np.inf)
    order = np.lexsort((-(j - 1), g, ratio))
    return g[order], j[order] - 1


def _apply(choice: np.ndarray, moves, n: int) -> np.ndarray:
    c = choice.copy()
    g, j = moves
    np.minimum.at(c, g[:n], j[:n])
    return c


def greedy(model: LinearModel, var: np.ndarray, budget: float) -> np.ndarray | None:
    """Width index per group (widths sorted ascending in ``model.bits_set``), or None when even the
    all-lowest assignment is over ``budget``. ``var[g, j]``: variance of group g at width j."""
    G, nb = var.shape
    budget = budget * (1 + 1e-9)  # sums of per-row seconds round: 5e-6 + 8e-6 > 13e-6
    choice = np.full(G, nb - 1, dtype=np.int64)
    if model.time(choice) <= budget:
        return choice
    fits = [j for j in range(nb) if model.time(np.full(G, j, dtype=np.int64)) <= budget]
    if not fits:  # (mixed plans pay more coding intercepts than uniform ones)
        return None
    best = _descend(model, var, choice, budget) if fits[0] == 0 else np.full(G, fits[0], dtype=np.int64)
    for j in fits:  # mixing widths pays more coding intercepts: try uniform starts too
        cand = raise_back(model, var, np.full(G, j, dtype=np.int64), budget)
        if var[np.arange(G), cand].sum() < var[np.arange(G), best].sum():
            best = cand
    return best


def _descend(model: LinearModel, var: np.ndarray, choice: np.ndarray, budget: float) -> np.ndarray:
    for _ in range(2):
        moves = _moves(model, var, choice, 0)
        lo, hi = 0, len(moves[0])  # invariant: prefix hi fits (all moves = the lowest widths)
        while lo < hi:
            mid = (lo + hi) // 2
            if model.time(_apply(choice, moves, mid)) <= budget:
                hi = mid
            else:
                lo = mid + 1
        choice = _apply(choice, moves, hi)
        choice = raise_back(model, var, choice, budget)
    return choice


def raise_back(model: LinearModel, var: np.ndarray, choice: np.ndarray, budget: float) -> np.ndarray:
    """Spend leftover budget: raise groups one width, most variance removed per second first,
    while it fits (batched, halving the batch when it overshoots)."""
    nb = var.shape[1]
    cost = _step_saving(model, choice).reshape(-1, nb)  # seconds per width, binding rows
    g = np.flatnonzero(choice < nb - 1)
    c = choice[g]
    dt = cost[g, c + 1] - cost[g, c]
    gain = (var[g, c] - var[g, c + 1]) / np.maximum(dt, 1e-30)
    g = g[np.lexsort((-g, -gain))]  # most variance removed per second spent first (ties: higher g)
    batch, i, misses = max(1, g.size // 8), 0, 0
    while i < g.size and misses < 32:  # single raises that miss: give up after a few
        trial = choice.copy()
        trial[g[i:i + batch]] += 1
        if model.time(trial) <= budget:
            choice, i = trial, i + batch
        elif batch == 1:
            i, misses = i + 1, misses + 1
        else:
            batch //= 2
    return choice


_raise_back = raise_back  # the name tests/solver/test_solver_greedy.py tests it by
