"""Building and solving one branch-and-bound node's LP with HiGHS, and what its status proves.

Why a module: both node relaxations (:mod:`bnb`, :mod:`compact`) re-solve warm and must neither
prune a node HiGHS merely failed on nor wait on it for long. Seen on a 393-group instance whose
coding constants dominate: warm dual simplex took 1-12 s to prove a node infeasible and sometimes
ended ``kUnknown``, where a fresh solve with presolve took 0.2-1 s. So a warm solve gets a time
limit; without a verdict the node is solved afresh with presolve; still without one, the search
keeps the node open at its parent's bound (``nan`` here) instead of discarding it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading

import numpy as np

PROVEN = ("kOptimal", "kInfeasible", "kObjectiveBound")
NODE_LIMIT_S = 0.5  # a warm solve, at least (bnb: the root's time if longer), before a fresh one
ROOT_LIMIT_S = 600.0


def has_highspy() -> bool:
    return importlib.util.find_spec("highspy") is not None


_BANNER = threading.Lock()
_quiet = {"done": False}


def new_highs(hs):
    """A silent ``highspy.Highs``. The first one a process makes prints HiGHS's banner from C++
    straight to file descriptor 1 (it broke ``adaqp plan``'s progress lines): that one is made
    with descriptor 1 pointed at /dev/null."""
    with _BANNER:
        if _quiet["done"]:
            h = hs.Highs()
        else:
            sys.stdout.flush()
            saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, 1)
                h = hs.Highs()
            finally:
                os.dup2(saved, 1)
                os.close(saved), os.close(null)
            _quiet["done"] = True
    h.setOptionValue("output_flag", False)
    return h


def highs_lp(hs, cost, col_lo, col_hi, A, row_lo, row_hi):
    """A ``HighsLp`` from column costs and bounds, a sparse matrix and row bounds (numpy
    infinities become HiGHS's)."""
    inf = lambda v: np.where(np.isposinf(v), hs.kHighsInf, np.where(np.isneginf(v), -hs.kHighsInf, v))  # noqa: E731
    A = A.tocsc()
    lp = hs.HighsLp()
    lp.num_col_, lp.num_row_ = A.shape[1], A.shape[0]
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = np.asarray(cost, float), inf(col_lo), inf(col_hi)
    lp.row_lower_, lp.row_upper_ = inf(row_lo), inf(row_hi)
    lp.a_matrix_.format_ = hs.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = A.indptr, A.indices, A.data
    return lp


def run_checked(h, hs, limit_s: float, cold: bool = False):
    """Solve ``h`` warm within ``limit_s``; if that ends without a verdict, a fresh copy with
    presolve gets as long. Returns ``(status, the solver holding the answer)``.

    ``cold`` (a search's root, no basis to start from): the interior-point method with crossover
    instead of dual simplex from the slack basis. For the compact relaxation the benchmark's root
    takes 0.9 s instead of 1.4 s and the crossover's basis led to faster searches on every graph
    measured (10,000 groups 8.7 -> 7.7 s, Cora at 2.6 ms 77 -> 20 s, rmat 8.0 -> 3.1 s); the
    disaggregated one's search got slower (41 -> 52 s), so it keeps dual simplex
    (bench_solver.py, 2026-11-27)."""
    h.setOptionValue("time_limit", h.getRunTime() + limit_s)  # HiGHS's limit counts every run
    if cold:
        h.setOptionValue("solver", "ipm")
    h.run()
    if cold:
        h.setOptionValue("solver", "choose")
    status = h.getModelStatus()
    if status.name in PROVEN:
        return status, h
    fresh = new_highs(hs)
    fresh.setOptionValue("time_limit", limit_s)
    fresh.setOptionValue("objective_bound", h.getOptions().objective_bound)
    fresh.passModel(h.getLp())
    fresh.run()
    h.clearSolver()  # the warm basis gave up: start the next node from scratch
    return fresh.getModelStatus(), fresh


def status_bound(status, hs, cutoff: float) -> float:
    """The bound a non-optimal status proves: ``inf`` (no plan), ``cutoff`` (the LP exceeds it) or
    ``nan`` (nothing: the caller keeps the node open at its parent's bound)."""
    if status == hs.HighsModelStatus.kInfeasible:
        return np.inf
    if status == hs.HighsModelStatus.kObjectiveBound:
        return cutoff
    return float("nan")


class Warm:
    """A node's basis and its row count, to start its children from (:func:`start_from`), with the
    basis extended by the cuts added since, built once for both children: converting the status
    vector to a list and back took 1.6 ms per node LP (0.48 s of an 8.6 s single-thread search)."""

    __slots__ = ("_grown", "basis", "rows")

    def __init__(self, basis, rows: int):
        self.basis, self.rows, self._grown = basis, rows, {}

    def grown(self, hs, rows: int):
        """The basis over ``rows`` rows, the new ones (cuts) basic."""
        b = self._grown.get(rows)
        if b is None:  # (two workers may build it at once: either copy serves)
            b = hs.HighsBasis()
            b.col_status, b.valid = self.basis.col_status, True
            b.row_status = list(self.basis.row_status) + [hs.HighsBasisStatus.kBasic] * (rows - self.rows)
            self._grown = {rows: b}  # the newest only: the pool only grows
        return b


def basis_of(h):
    """``h``'s basis as a :class:`Warm` (``None`` when there is none). The row count travels with
    it because reading ``row_status`` converts the whole vector to a list."""
    b = h.getBasis()  # pybind copies HiGHS's basis: later solves do not change it
    return Warm(b, h.getNumRow()) if b.valid else None


def start_from(h, hs, warm) -> None:
    """Start ``h``'s next solve from ``warm`` (a node's parent's :func:`basis_of`): a child differs
    by a few bounds, so dual simplex needs a few pivots from there instead of hundreds from
    whichever node this worker solved last. Rows added since the basis was taken (cuts) start
    basic; the columns never change."""
    if warm is None:
        return
    rows = h.getNumRow()
    if rows < warm.rows:
        return
    h.setBasis(warm.basis if rows == warm.rows else warm.grown(hs, rows))
