"""Branch and bound over the coding-intercept indicators ``y``: a certified gap for ``min-variance``.

Why: every width a rank codes in an exchange pays the coding op's per-call constant (``y``). The
budget makes the problem a knapsack whose items carry fixed costs, so any convex relaxation mixes
plans: on the 10,000-group benchmark the LP turns 8 bits on "30 %" in each of four exchanges,
paying 30 % of each constant, where a real plan pays one exchange in full (1.35 % apart). Only
branching on ``y`` closes that.

Node relaxation: by default :mod:`compact`'s (channels' totals, a tenth of the columns) wherever the
model allows it, else the *disaggregated* LP (:class:`nodelp.NodeLP`): ``x`` and ``y`` continuous,
``x[g, j] <= y`` for every member of every set (not the aggregated ``sum x <= |set| y``), the
epigraph rows of every term and the budget. Both give the same bound on the benchmark. The ``y``
fixed by branching are column bounds (``y = 0`` also forbids its widths). Each worker thread owns
one HiGHS object for the whole search; a node keeps its LP's basis and its children start from it
(they differ by one bound: on the benchmark a third of the pivots of starting from whatever node
the worker solved last), stopped early once the objective passes the incumbent (HiGHS's
``objective_bound``). The workers run asynchronously: one that finishes a child LP takes the
next waiting child, and the best open node is expanded whenever a worker is free and no child
waits (no barrier between batches: 10,000-group search 6.1 -> 5.2 s; the tree's shape may then
differ by a few nodes from run to run, its bound not). A child whose time floor
(:class:`timefloor.TimeFloor`, checked on the worker) misses the budget is dropped without an LP;
one HiGHS cannot decide (:mod:`lpstatus`) stays open at its parent's bound.

Search: best first; branch on the free ``y`` nearest 0.5, the child it moves past 0.5 (the *far*
one, which the incumbent usually cuts off) priced with Devex (:meth:`compact.CompactLP.solve`);
reduced-cost fixing after every node (a
column whose reduced cost exceeds the distance to the incumbent keeps its bound in the subtree).
When a node's LP has integral ``y``, HiGHS solves its MILP with those ``y`` fixed (an incumbent,
and when every ``y`` is fixed by branching, the node's own bound); if some ``y`` are still free and
the node is not settled, its whole MILP gets up to :data:`NODE_MIP_S` seconds with the incumbent's
target as cutoff (it stops once its bound passes the target). The certified lower bound is the
least bound of the open nodes and of those closed within ``gap``: every plan lies in one of them.

:func:`solve_and_certify` (``adaqp plan --certify``) starts the search beside the default solve,
whose plan becomes the incumbent when it arrives: on two cores the two overlap (10,000 groups:
6.2 s one after the other, 4.21-4.94 s beside over 24 runs, medians 4.52 and 4.37 s).
"""

from __future__ import annotations

import contextlib
import heapq
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from adaqp.solver.greedy import raise_back
from adaqp.solver.lpstatus import NODE_LIMIT_S, ROOT_LIMIT_S
from adaqp.solver.model import LinearModel
from adaqp.solver.nodelp import BUDGET_SLACK, NodeLP
from adaqp.solver.timefloor import TimeFloor

from adaqp.errors import require

INTEGRAL = 1e-6  # a y this close to 0 or 1 counts as integral
EMPTY = (np.inf, None, None, None)  # a child its time floor dropped: no plan in it, no LP
RELAXATIONS = ("compact", "disaggregated")
NODE_MIP_S = 5.0  # a node MILP at an integral-y node: 4,160-group benchmark 186 s -> 41 s (15 s with a cutoff)


@dataclass
class BnbResult:
    choice: np.ndarray | None  # best plan found (width index per group), None when none fits
    variance: float  # its variance (inf when none)
    lower_bound: float  # certified: no plan meeting the budget has less variance
    gap: float  # (variance - lower_bound) / variance
    nodes: int  # node LPs solved
    branch_vars: int  # y indicators (the branching variables)
    leaves_milp: int  # node MILPs solved (y fixed, or a node's free y binary)
    complete: bool  # the tree was exhausted within ``gap`` (else the time limit stopped it)
    solve_time_s: float


def _relaxation(model: LinearModel, budget: float, workers: int, kind: str):
    from adaqp.solver.compact import CompactLP, NotCompact

    require(kind in RELAXATIONS, f"relaxation must be one of {RELAXATIONS}, got {kind!r}")
    if kind == "compact":
        with contextlib.suppress(NotCompact):  # loads out of proportion to rows: the exact LP serves
            return CompactLP(model, budget, workers)
    return NodeLP(model, budget, workers)


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
    choice = raise_back(node.model, node.var, node.rounded(z), budget)
    return choice if node.model.time(choice) <= budget * (1 + BUDGET_SLACK) else None


class _OpenNode(NamedTuple):
    """A node waiting to be expanded. The heap orders nodes by ``bound``, then by ``order``
    (unique: the arrays are never compared)."""

    bound: float  # its LP's bound (its parent's where HiGHS gave no verdict; -inf: a root without one)
    order: int  # when it was opened
    lo: np.ndarray  # its column bounds
    hi: np.ndarray
    z: np.ndarray | None  # its LP's solution (None: no verdict)
    d: np.ndarray | None  # the LP's reduced costs
    basis: object  # the LP's basis, which its children start from


class _Child(NamedTuple):
    """A child LP waiting for a worker, or running on one."""

    bounds: tuple[np.ndarray, np.ndarray]  # its column bounds (lo, hi)
    parent_bound: float  # holds for the child until its LP is solved
    basis: object  # its parent's basis: the child differs from it by one bound
    parent_allowed: np.ndarray | None  # the widths its parent allowed (None: the root's, never floored)
    far: bool  # its y moves past 0.5: priced with Devex


class BranchAndBound:
    """One search (:func:`branch_and_bound`): the node relaxation, the incumbent, the open nodes,
    the children waiting for or running on a worker, and the counts the result reports.
    :meth:`run` runs it, once; :meth:`_solve_child` runs on the LP workers (it only reads the
    incumbent's target), everything else on the caller's thread."""

    def __init__(self, model: LinearModel, budget: float, gap: float, time_limit: float,
                 incumbent, threads: int | None, relaxation: str, on_batch) -> None:
        self.t0 = time.perf_counter()
        self.model, self.budget, self.gap, self.time_limit, self.on_batch = model, budget, gap, time_limit, on_batch
        self.relax = _relaxation(model, budget, threads or min(2, os.cpu_count() or 1), relaxation)
        self.G, self.ys, self.binary = self.relax.G, self.relax.ys, self.relax.integer
        # the time floor is built while the root LP runs (HiGHS leaves the GIL): the root starts sooner
        bg = ThreadPoolExecutor(1, thread_name_prefix="adaqp-floor")
        self.floor_job = bg.submit(TimeFloor, model)
        bg.shutdown(wait=False)
        self.best_choice: np.ndarray | None = None
        self.best_variance = np.inf
        self.node_lps = 0  # LPs solved
        self.node_milps = 0  # MILPs solved at nodes with integral y
        self.pending: Future | None = incumbent if isinstance(incumbent, Future) else None  # a seed on its way
        if self.pending is None:
            self.offer(incumbent)
        self.heap: list[_OpenNode] = []
        self.order = 0  # the last open node's ``order``
        self.closed_lb = np.inf  # least bound of the nodes closed within ``gap``
        self.waiting: list[_Child] = []
        self.inflight: dict[Future, tuple[_Child, int]] = {}  # a running child LP -> (child, worker)
        self.free: list[int] = []  # workers without a child

    # ---- the incumbent and the bound

    def offer(self, choice) -> None:
        """``choice`` becomes the incumbent if it meets the budget with less variance."""
        if choice is not None and self.model.time(choice) <= self.budget * (1 + BUDGET_SLACK):
            v = float(self.relax.var[np.arange(self.G), choice].sum())
            if v < self.best_variance:
                self.best_choice, self.best_variance = np.asarray(choice), v

    def target(self) -> float:
        """A node bounded at or above this holds no plan better than the incumbent by ``gap``."""
        return self.best_variance * (1 - self.gap)

    def close(self, bound: float) -> None:
        self.closed_lb = min(self.closed_lb, bound)

    def lower_bound(self) -> float:
        """Every plan is in an open node, a waiting or running child's parent, or a closed node."""
        parents = [c.parent_bound for c in self.waiting] + [c.parent_bound for c, _ in self.inflight.values()]
        return min([self.closed_lb, self.best_variance] + [h.bound for h in self.heap[:1]] + parents)

    def poll(self, block: bool = False) -> None:
        """Take the seed plan once it has arrived (``block``: wait for it); its error is raised."""
        if self.pending is not None and (block or self.pending.done()):
            seed, self.pending = self.pending.result(), None
            self.offer(getattr(seed, "choice", seed))

    def report(self) -> None:
        if self.on_batch is not None:
            self.on_batch(self.elapsed(), self.node_lps, self.lower_bound(), self.best_variance)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    # ---- nodes

    def expand(self, node: _OpenNode) -> list[tuple[tuple[np.ndarray, np.ndarray], bool]]:
        """A node's children to solve, each as (column bounds, whether it is the far one: its y
        moves over 0.5), or none when its MILPs settled the node."""
        relax, bound, lo, hi, z, d = self.relax, node.bound, node.lo, node.hi, node.z, node.d
        if z is None:  # HiGHS gave no verdict on this node's LP: branch on a free y without one
            z, d = np.where(lo < hi, 0.5, lo), np.zeros_like(lo)
        lo, hi = _rc_fix(lo, hi, z, d, self.target() - bound, self.binary)
        y, free = z[self.ys], lo[self.ys] < hi[self.ys]
        frac = np.flatnonzero(free & (y > INTEGRAL) & (y < 1 - INTEGRAL))
        if frac.size == 0:  # y integral: this node's best plan with these y, by HiGHS's MIP
            self.offer(_round(relax, z, self.budget))
            fixed_lo, fixed_hi = relax.fix_y(lo, hi, np.flatnonzero(free), np.round(y[free]))
            # (to the search's gap, all it needs: HiGHS's default 1e-6 took 114 s on an rmat node)
            mb, mc = relax.milp(fixed_lo, fixed_hi, self.time_limit - self.elapsed(), rel_gap=self.gap)
            self.node_milps += 1
            self.offer(mc)
            if not free.any():  # every y fixed by branching: the MILP settled this node
                self.close(max(bound, mb))
                return []
            if bound >= self.target():
                self.close(bound)
                return []
            # what is left here is the groups' own integrality, which branching on y cannot close:
            # the node's whole MILP (free y binary) for a while; its dual bound may settle the node
            mb, mc = relax.milp(lo, hi, min(NODE_MIP_S, self.time_limit - self.elapsed()), self.target())
            self.node_milps += 1
            self.offer(mc)
            if max(bound, mb) >= self.target():
                self.close(max(bound, mb))
                return []
            frac = np.flatnonzero(free)  # other y values may still do better: keep branching
        i = int(frac[np.argmin(np.abs(y[frac] - 0.5))])
        # the child whose y moves over 0.5 is the one the incumbent usually cuts off (its LP ends
        # far above the parent's): solved with Devex pricing, which skips dual steepest edge's
        # exact weights at the start (about a third of a child's HiGHS time)
        return [(relax.fix_y(lo, hi, i, v), abs(v - y[i]) > 0.5) for v in (1, 0)]

    def _fits(self, lo, hi, parent_allowed) -> bool:
        """The child's time floor meets the budget (else it is dropped without an LP); only the
        widths its parent allowed and the floor was asked for are recomputed."""
        floor = self.floor_job.result().seconds(self.relax.allowed(lo, hi), lo[self.ys], parent_allowed)
        return floor <= self.budget * (1 + BUDGET_SLACK)

    def _solve_child(self, child: _Child, worker: int):
        """On a worker: the child's LP, warm from its parent's basis, cut off at the target."""
        clo, chi = child.bounds
        if not self._fits(clo, chi, child.parent_allowed):
            return EMPTY
        return self.relax.solve(clo, chi, self.target(), worker, child.basis, devex=child.far)

    def _take(self, child: _Child, res) -> None:
        """A child's LP result: closed (empty, or past the cutoff), or opened on the heap."""
        (clo, chi), bound = child.bounds, child.parent_bound
        b, zc, dc, bc = res
        if res is not EMPTY:
            self.node_lps += 1
        if zc is None and not np.isnan(b):  # empty, or past the cutoff
            if np.isfinite(b):
                self.close(b)
            return
        self.order += 1  # (an unknown LP, nan: open, at the parent's bound, without a solution)
        heapq.heappush(self.heap, _OpenNode(bound if np.isnan(b) else max(b, bound), self.order, clo, chi, zc, dc, bc))

    def _solve_root(self) -> None:
        # the root on one worker: the others start from its basis (and its cuts) at their first node;
        # a warm node LP may then take as long as the root (at least NODE_LIMIT_S) before a fresh one
        relax = self.relax
        relax.limit_s, t_root = ROOT_LIMIT_S, time.perf_counter()
        bound, z, d, basis = relax.solve(relax.lo0, relax.hi0, self.target())
        relax.limit_s = max(NODE_LIMIT_S, time.perf_counter() - t_root)
        self.node_lps += 1
        if z is not None:
            self.heap.append(_OpenNode(bound, self.order, relax.lo0, relax.hi0, z, d, basis))
        elif np.isnan(bound):  # HiGHS failed at the root: open, with no bound yet
            self.heap.append(_OpenNode(-np.inf, self.order, relax.lo0, relax.hi0, None, None, None))
        elif np.isfinite(bound):  # root already above the incumbent's target
            self.closed_lb = bound

    # ---- the search

    def run(self) -> BnbResult:
        self._solve_root()
        # asynchronous: a worker that finishes a child LP takes the next waiting child at once; a node
        # is popped and expanded when no child waits and a worker is free
        W = len(self.relax.workers)
        self.free = list(range(W))
        # while a Future's plan is being solved, and the workers would take every core, one core is left
        # to it: it arrives sooner (1.95 -> 1.7 s on the benchmark) and the LPs without its cutoff
        # were slow anyway
        busy_while_seeding = max(1, W - 1) if W >= (os.cpu_count() or 1) else W
        ex = ThreadPoolExecutor(W) if W > 1 else None
        heap, waiting, inflight, free = self.heap, self.waiting, self.inflight, self.free
        try:
            while self.elapsed() < self.time_limit:
                self.poll()
                while free and not waiting and heap and heap[0].bound < self.target():
                    node = heapq.heappop(heap)
                    # (the root's floor was never asked)
                    parent = None if node.lo is self.relax.lo0 else self.relax.allowed(node.lo, node.hi)
                    waiting += [_Child(bounds, node.bound, node.basis, parent, far) for bounds, far in self.expand(node)]
                while free and waiting and (self.pending is None or len(inflight) < busy_while_seeding):
                    child, w = waiting.pop(0), free.pop()
                    if ex is None:  # one worker: in this thread, one child at a time
                        self._take(child, self._solve_child(child, w))
                        free.append(w)
                        self.report()
                    else:
                        inflight[ex.submit(self._solve_child, child, w)] = (child, w)
                if not inflight:
                    if not waiting and (not heap or heap[0].bound >= self.target()):
                        break
                    continue
                done, _ = wait(list(inflight), return_when=FIRST_COMPLETED,
                               timeout=None if self.pending is None else 0.05)
                for f in done:
                    child, w = inflight.pop(f)
                    free.append(w)
                    self._take(child, f.result())
                self.report()
            for f in list(inflight):  # the time limit: finish what runs (its parent's bound counts)
                child, w = inflight.pop(f)
                self._take(child, f.result())
            for child in waiting:  # never solved: open at the parent's bound
                self.order += 1
                heapq.heappush(heap, _OpenNode(child.parent_bound, self.order, *child.bounds, None, None, child.basis))
            waiting.clear()
        finally:
            if ex is not None:
                ex.shutdown(wait=True)
        self.poll(block=True)
        complete = not heap or heap[0].bound >= self.target()
        lb = self.lower_bound()
        v = self.best_variance
        g = (v - lb) / v if np.isfinite(v) and v > 0 else (0.0 if v == 0 else np.inf)
        return BnbResult(self.best_choice, v, lb, max(0.0, g), self.node_lps, self.relax.ny, self.node_milps, complete,
                         self.elapsed())


def branch_and_bound(model: LinearModel, budget: float, gap: float = 1e-3, time_limit: float = 5.0,
                     incumbent: np.ndarray | None = None, threads: int | None = None,
                     relaxation: str = "compact", on_batch=None) -> BnbResult:
    """Best-first branch and bound over ``y`` (module doc; :class:`BranchAndBound` holds its state).
    ``incumbent``: a plan to start from, or a ``concurrent.futures.Future`` of one (a plan, or
    anything with its ``choice``): the search starts without it and takes it between batches once
    it is done (its error is raised). ``threads``: LP workers (default: 2 when the machine has 2
    cores), each solving children as they come. ``relaxation``: ``compact`` (:mod:`compact`, where
    the model allows it) or ``disaggregated``. ``on_batch(elapsed_s, node_lps, lower_bound,
    best_variance)``: called after every batch (a progress display)."""
    return BranchAndBound(model, budget, gap, time_limit, incumbent, threads, relaxation, on_batch).run()


def certify(model: LinearModel, sol, budget: float, gap: float, seconds: float, on_batch=None):
    """Run the search for ``seconds`` from ``sol`` (a :class:`milp.Solution`): a plan it finds that
    is better replaces ``sol``'s; ``sol.size`` gains ``certified_lower_bound``, ``certified_gap``
    (against that bound: it holds for the whole problem, unlike ``gap``), ``certify_complete``,
    ``certify_nodes`` and ``certify_time_s``."""
    r = branch_and_bound(model, budget, gap=gap, time_limit=seconds, incumbent=sol.choice, on_batch=on_batch)
    sol.solve_time_s += r.solve_time_s
    return _merge(model, sol, r)


def solve_and_certify(model: LinearModel, solve_seed, budget: float, gap: float, seconds: float,
                      relaxation: str = "compact", on_batch=None):
    """:func:`certify`, with the first plan (``solve_seed()``, a :class:`milp.Solution`) solved in a
    thread while the search starts: its root LP and first nodes need no incumbent, and on two cores
    the two overlap (most of ``solve`` is CBC's process or HiGHS, both outside the GIL). The
    search's time limit counts from the start; ``solve_time_s`` is the wall time of both."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(1, thread_name_prefix="adaqp-seed") as ex:
        seed = ex.submit(solve_seed)
        try:
            r = branch_and_bound(model, budget, gap=gap, time_limit=seconds, incumbent=seed, relaxation=relaxation,
                                 on_batch=on_batch)
        finally:
            seed.cancel()
    sol = seed.result()
    sol.solve_time_s = time.perf_counter() - t0
    return _merge(model, sol, r)


def _merge(model: LinearModel, sol, r: BnbResult):
    """``sol`` with the search's findings: its plan where better, and its certified bound."""
    if r.choice is not None and r.variance < sol.variance:
        sol.choice, sol.bits = r.choice, np.asarray(model.bits_set)[r.choice]
        sol.variance, sol.time_s, sol.status = r.variance, model.time(r.choice), f"{sol.status}; improved by bnb"
        sol.gap = r.gap  # the first solve's gap was about its own plan, and within its formulation
        sol.size["formulation"] = "branch and bound"
    sol.size.update({"certified_lower_bound": r.lower_bound, "certified_gap": r.gap,
                     "certify_complete": r.complete, "certify_nodes": r.nodes, "certify_time_s": r.solve_time_s})
    return sol
