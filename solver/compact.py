"""A compact node relaxation for :mod:`bnb`: channels' totals instead of groups' shares.

Why: the disaggregated LP has a column per group and width and a row per group (30k x 42k on the
10,000-group benchmark); a warm re-solve after one indicator changes takes about 0.35 s, and the
search needs about 190 of them. Here a channel (exchange, sender, receiver) has a handful of columns.

What makes it possible: within a channel every group loads every resource row in proportion to its
rows at each width (checked at build time; else :class:`CompactLP` refuses and :mod:`bnb` keeps the
disaggregated LP). Write ``p_k[g]`` for group g's share at the k-th narrowest width or wider
(``k = 1 .. nb-1``); the variance is ``L_0 * sum V - sum_k (L_(k-1) - L_k) * ben_k`` with
``ben_k = sum_g V_g p_k[g]``, and the resource rows see only the totals ``P_k = sum_g n_g p_k[g]``.
For one sequence ``p_k`` with every share in ``[a, b]`` the largest ``ben_k`` at total ``P_k``
fills the densest groups first (``V_g / n_g`` descending): ``a * D + (b - a) * S((P_k - a N) / (b - a))``
with ``S`` the concave running sum of the densities over the channel's ``N`` rows. Each segment
of ``S`` gives a linear cut ``ben_k <= (D - alpha - beta N) a + alpha b + beta P_k``, valid for
every ``a <= b``; the cuts are generated as they are violated (a few per channel and sequence).
``a`` and ``b`` are variables bounded by the caps of the widths below and above (``u``, one per
channel and width, ``u <= y`` as in :func:`nodelp._capped_rows`).

What it relaxes: the per-group coupling of the sequences (``p_(k+1)[g] <= p_k[g]`` and a middle
width's cap ``p_k[g] - p_(k+1)[g] <= u_k``) is kept only in total. With the middle width's cap at
1 this is the disaggregated LP itself (rearranging both sequences densest-first keeps every other
constraint); elsewhere it is weaker, and always a valid lower bound: every plan satisfies it.
"""

from __future__ import annotations

import threading

import numpy as np
import scipy.sparse as sp

from adaqp.solver.groups import level_factor
from adaqp.solver.lpstatus import NODE_LIMIT_S, basis_of, highs_lp, new_highs, run_checked, start_from, status_bound
from adaqp.solver.milp import build_problem, var_scale, variance_matrix
from adaqp.solver.model import LinearModel
from adaqp.solver.nodelp import BUDGET_SLACK, NodeLP

CUT_TOL = 1e-6  # violation (fraction of the channel's V) that earns a cut: above HiGHS's 1e-7
# feasibility tolerance on the cut rows, which are in those units, or a cut would be re-added forever
NEIGHBOURS = 3  # a violated channel also gets its cut's neighbouring segments: fewer re-solves
MAX_ROUNDS = 50  # cut rounds per node; the bound stays valid if they run out


class NotCompact(ValueError):
    """The model's channels do not load resources in proportion to rows at each width."""


class _Channels:
    """Per channel: its groups densest first, the running sums ``S`` and the rows' coefficients."""

    def __init__(self, model: LinearModel, A_x: sp.csr_matrix):
        g = model.groups
        n, V, chan, nb = g.counts.astype(float), g.V, g.channel, len(model.bits_set)
        self.C = int(chan.max()) + 1 if chan.size else 0
        self.N = np.bincount(chan, weights=n, minlength=self.C)
        self.D = np.bincount(chan, weights=V, minlength=self.C)
        dens = np.where(n > 0, V / np.maximum(n, 1), 0.0)
        order = np.lexsort((-dens, chan))  # by channel, densest first
        self.start = np.searchsorted(chan[order], np.arange(self.C + 1))
        self.R = np.concatenate([[0.0], np.cumsum(n[order])])  # running rows, offset per channel
        self.S = np.concatenate([[0.0], np.cumsum(V[order])])
        self.dens, self.order = dens[order], order
        rep = order[self.start[:-1]]  # one group per channel
        A = A_x.tocsc()
        self.alpha = []  # per width: rows x channels, load per row sent at that width
        for j in range(nb):
            cols = np.arange(model.groups.num_groups) * nb + j
            per_row = A[:, cols] @ sp.diags(1.0 / np.maximum(n, 1))
            ref = per_row[:, rep]
            dev = per_row - ref[:, chan]
            scale = abs(per_row).max() if per_row.nnz else 0.0
            if dev.nnz and abs(dev).max() > 1e-9 * max(scale, 1e-300):
                raise NotCompact("a channel's groups load a resource out of proportion to their rows")
            self.alpha.append(ref.tocsc())

    def segment(self, c: int, r: float) -> int:
        """Index (into the flat arrays) of the segment of channel c's S holding r rows."""
        a, b = self.start[c], self.start[c + 1]
        lo = self.R[a]
        i = int(np.searchsorted(self.R[a:b + 1] - lo, r, side="left")) - 1
        return a + min(max(i, 0), b - a - 1)

    def tangent(self, i: int, c: int) -> tuple[float, float]:
        """``(alpha, beta)`` of segment i of channel c: ``S(r) <= alpha + beta r`` everywhere."""
        a = self.start[c]
        beta = self.dens[i]
        return float(self.S[i] - self.S[a] - beta * (self.R[i] - self.R[a])), float(beta)


class CompactLP:
    """The compact relaxation as warm-started HiGHS models (one per worker), with the interface of
    :class:`nodelp.NodeLP`: columns ``[y, t, u, P, a, b, ben]``, a node is ``(lo, hi)`` over them."""

    def __init__(self, model: LinearModel, budget: float, workers: int = 1):
        import highspy

        self.model, self.var, self.highspy, self.budget = model, variance_matrix(model), highspy, budget
        self.G, self.nb = self.var.shape
        self.vscale = var_scale(self.var, "min-variance")
        pb = build_problem(model, self.var, "min-variance", budget * (1 + BUDGET_SLACK), 0.0)
        nx, ny, nb = pb.nx, len(model.ysets), self.nb
        nt = pb.c.size - nx - ny
        ch = self.ch = _Channels(model, pb.A_ub[ny:, :nx])
        C, K = ch.C, nb - 1
        self.ny, self.K = ny, K
        self.ys = slice(0, ny)
        off = {"t": ny, "u": ny + nt, "P": ny + nt + C * nb}
        off["a"], off["b"], off["ben"] = off["P"] + C * K, off["P"] + 2 * C * K, off["P"] + 3 * C * K
        self.off, self.n = off, off["P"] + 4 * C * K
        lev = level_factor(model.bits_set)
        if np.any(np.diff(lev) >= 0):
            raise NotCompact("widths must be listed narrowest first (level factors decreasing)")
        self.const = float(lev[0] * ch.D.sum()) if nb else 0.0  # variance with every row at the narrowest
        cost = np.zeros(self.n)
        for k in range(1, nb):
            cost[self._col("ben", np.arange(C), k)] = -(lev[k - 1] - lev[k]) * ch.D / self.vscale
        rows, rlo, rhi = self._base_rows(pb, nx, ny, nt)
        st, idx, val = self._cut_rows(*self._seed_cuts())  # in the model: each worker copies it
        cuts = sp.csr_matrix((val, idx, np.r_[st, idx.size]), shape=(st.size, self.n))
        rows, rlo, rhi = sp.vstack([rows, cuts]).tocsr(), np.r_[rlo, np.full(st.size, -np.inf)], np.r_[rhi, np.zeros(st.size)]
        lo0, hi0 = np.zeros(self.n), np.ones(self.n)
        lo0[off["t"]:off["u"]] = pb.lb[nx + ny:]
        hi0[off["t"]:off["u"]] = highspy.kHighsInf
        self.lo0, self.hi0 = lo0, hi0  # shares and benefits are fractions of the channel's rows / V
        self.integer = np.zeros(self.n, bool)
        self.integer[:ny] = True
        self.lp = highs_lp(highspy, cost, lo0, hi0, rows, rlo, rhi)
        self._pool, self._pool_keys, self._lock = [], set(), threading.Lock()  # cuts found so far
        self.workers = [self._highs() for _ in range(max(1, int(workers)))]
        self._synced = [0] * len(self.workers)
        self._cold = [True] * len(self.workers)  # no solve yet: the first, without a basis, is cold
        self._bounds = [None] * len(self.workers)  # each worker's current column bounds
        self._pricing = [-1] * len(self.workers)
        self.cols = np.arange(self.n, dtype=np.int32)
        self._exact = None
        self.limit_s = NODE_LIMIT_S

    def _col(self, kind: str, c, k: int = 0):
        C = self.ch.C
        if kind == "u":
            return self.off["u"] + np.asarray(c) * self.nb + k
        return self.off[kind] + (k - 1) * C + np.asarray(c)

    def _highs(self):
        h = new_highs(self.highspy)
        h.setOptionValue("presolve", "off")
        h.passModel(self.lp)
        return h

    def _base_rows(self, pb, nx: int, ny: int, nt: int):
        """Term and budget rows over channel totals, caps ``u <= y``, and per channel and k:
        ``a N <= P <= b N``, ``a >= 1 - sum(u below k)``, ``b <= sum(u from k)``, ``P_(k+1) <= P_k``
        and a middle width's rows ``P_k - P_(k+1) <= N u_k``."""
        ch, nb, C = self.ch, self.nb, self.ch.C
        T = pb.A_ub[ny:]
        rhs = np.asarray(pb.b_ub[ny:], float).copy()
        cc = np.arange(C)
        blocks = [sp.hstack([T[:, nx:nx + ny + nt], sp.csr_matrix((T.shape[0], self.n - ny - nt))]).tocsr()]
        if nb:
            rhs -= ch.alpha[0] @ ch.N  # every row starts at the narrowest width
        for k in range(1, nb):  # X_(k-1) loses P_k, X_k gains it (P_k = N * its column)
            coef = ((ch.alpha[k] - ch.alpha[k - 1]) @ sp.diags(ch.N)).tocsr()
            blocks.append(sp.csr_matrix((coef.data, coef.indices + self._col("P", 0, k), coef.indptr),
                                        shape=(T.shape[0], self.n)))
        term = sp.csr_matrix(blocks[0].shape)
        for b in blocks:
            term = term + b
        R = [term]
        lo = [np.full(T.shape[0], -np.inf)]
        hi = [rhs]

        def add(entries, upper):  # entries: list of (cols array, coefficient array or scalar)
            m = len(upper)
            r, c, v = [], [], []
            for cols, coef in entries:
                cols = np.asarray(cols)
                r.append(np.arange(m))
                c.append(cols)
                v.append(np.broadcast_to(np.asarray(coef, float), cols.shape))
            R.append(sp.csr_matrix((np.concatenate(v), (np.concatenate(r), np.concatenate(c))), shape=(m, self.n)))
            lo.append(np.full(m, -np.inf))
            hi.append(np.asarray(upper, float))

        pairs = self.pairs = self._cap_pairs(nx)
        if pairs.size:
            add([(self._col("u", pairs[:, 0], pairs[:, 1]), 1.0), (pairs[:, 2], -1.0)], np.zeros(len(pairs)))
        for k in range(1, nb):
            P, a, b = self._col("P", cc, k), self._col("a", cc, k), self._col("b", cc, k)
            add([(a, 1.0), (P, -1.0)], np.zeros(C))
            add([(P, 1.0), (b, -1.0)], np.zeros(C))
            add([(a, -1.0)] + [(self._col("u", cc, j), -1.0) for j in range(k)], -np.ones(C))
            add([(b, 1.0)] + [(self._col("u", cc, j), -1.0) for j in range(k, nb)], np.zeros(C))
            if k + 1 < nb:
                add([(self._col("P", cc, k + 1), 1.0), (P, -1.0)], np.zeros(C))
                add([(P, 1.0), (self._col("P", cc, k + 1), -1.0), (self._col("u", cc, k), -1.0)], np.zeros(C))
        return sp.vstack(R).tocsr(), np.concatenate(lo), np.concatenate(hi)

    def _cap_pairs(self, nx: int) -> np.ndarray:
        """``[channel, width, indicator]`` for every indicator whose set holds that channel-width;
        refuses a set that holds part of a channel-width (the caps would then be wrong)."""
        g, nb = self.model.groups, self.nb
        per_channel = np.bincount(g.channel, minlength=self.ch.C)
        out = []
        for i, cols in enumerate(self.model.ysets):
            cols = np.asarray(cols)
            keys, counts = np.unique(g.channel[cols // nb] * nb + cols % nb, return_counts=True)
            if np.any(counts != per_channel[keys // nb]):
                raise NotCompact("an indicator's set holds part of a channel")
            out.extend((int(k // nb), int(k % nb), i) for k in keys)
        return np.array(out, dtype=np.int64).reshape(-1, 3)

    # ---- cuts ------------------------------------------------------------------------------------

    def _cut_rows(self, c: np.ndarray, k: np.ndarray, seg: np.ndarray):
        """Rows ``ben - (D - alpha - beta N) a - alpha b - beta P <= 0`` for segments ``seg``, in
        the columns' units (``P`` and ``ben`` as fractions of N and D: every coefficient near 1)."""
        ch = self.ch
        starts, index, value = [0], [], []
        for ci, ki, si in zip(c.tolist(), k.tolist(), seg.tolist()):
            al, be = ch.tangent(si, ci)
            D, N = max(ch.D[ci], 1e-300), ch.N[ci]
            index += [int(self._col("ben", ci, ki)), int(self._col("a", ci, ki)), int(self._col("b", ci, ki)),
                      int(self._col("P", ci, ki))]
            value += [1.0, -(1.0 - al / D - be * N / D), -al / D, -be * N / D]
            starts.append(len(index))
        return np.array(starts[:-1], np.int32), np.array(index, np.int32), np.array(value, float)

    def _add_cuts(self, h, c, k, seg) -> None:
        if len(c) == 0:
            return
        st, idx, val = self._cut_rows(np.asarray(c), np.asarray(k), np.asarray(seg))
        m = len(c)
        h.addRows(m, np.full(m, -self.highspy.kHighsInf), np.zeros(m), idx.size, st, idx, val)

    def _seed_cuts(self):
        """``(channels, k, segments)``: the first, middle and last segment of every channel's S,
        for every k."""
        ch = self.ch
        c, k, seg = [], [], []
        for ci in range(ch.C):
            a, b = ch.start[ci], ch.start[ci + 1]
            for si in sorted({a, (a + b - 1) // 2, b - 1}):
                for ki in range(1, self.nb):
                    c.append(ci), k.append(ki), seg.append(si)
        return np.array(c, np.int64), np.array(k, np.int64), np.array(seg, np.int64)

    def _violations(self, z: np.ndarray):
        """Channels and k whose ``ben`` exceeds the exact value at the LP's ``(P, a, b)``, with the
        segment that cuts them off."""
        ch, C = self.ch, self.ch.C
        out_c, out_k, out_s = [], [], []
        cc = np.arange(C)
        base_R, base_S = ch.R[ch.start[:-1]], ch.S[ch.start[:-1]]
        for k in range(1, self.nb):
            P, a, b, ben = (z[self._col(x, cc, k)] for x in ("P", "a", "b", "ben"))
            w = np.maximum(b - a, 0.0)
            r = np.where(w > 1e-12, (P - a) * ch.N / np.maximum(w, 1e-12), 0.0)
            r = np.clip(r, 0.0, ch.N)
            exact = a * ch.D + w * (np.interp(base_R + r, ch.R, ch.S) - base_S)
            bad = np.flatnonzero(ben * ch.D > exact + CUT_TOL * np.maximum(ch.D, 1e-300))
            for ci in bad.tolist():  # the segment that cuts, and its neighbours (fewer rounds)
                si = ch.segment(ci, r[ci])
                for sj in range(max(ch.start[ci], si - NEIGHBOURS), min(ch.start[ci + 1], si + NEIGHBOURS + 1)):
                    out_c.append(ci), out_k.append(k), out_s.append(sj)
        return out_c, out_k, out_s

    # ---- the NodeLP interface ----------------------------------------------------------------------

    def fix_y(self, lo: np.ndarray, hi: np.ndarray, idx, values):
        """Child bounds with indicators ``idx`` fixed to ``values`` (a 0 caps its channel-widths
        at 0 through ``u <= y``)."""
        idx = np.atleast_1d(idx)
        lo, hi = lo.copy(), hi.copy()
        lo[idx] = hi[idx] = np.broadcast_to(np.asarray(values, float), idx.shape)
        return lo, hi

    def solve(self, lo: np.ndarray, hi: np.ndarray, cutoff: float = np.inf, worker: int = 0, warm=None,
              devex: bool = False):
        """``(bound, z, reduced costs, basis)`` as :meth:`nodelp.NodeLP.solve`; cuts are added until
        none is violated (or :data:`MAX_ROUNDS`): the bound is valid after any round. Every worker
        holds the same cuts in the same order (:meth:`_sync`), so a basis fits any of them.
        ``devex``: price with Devex instead of dual steepest edge, whose exact weights HiGHS
        recomputes from every basis it is given (about 10 ms a child here). :mod:`bnb` asks it
        for the child its incumbent usually cuts off; single-thread searches after the seed,
        none -> far children (2026-11-27): 10,000 groups 8.1 -> 7.8 s, five SBM instances
        95 -> 88 s, Cora 7.8 -> 5.9 s, CiteSeer 26 -> 20 s, 4,000 groups and rmat equal.
        Devex for every child: SBM 81 s, but Cora 9.5 s."""
        h, hs = self.workers[worker], self.highspy
        pricing = 1 if devex and warm is not None else -1  # Devex, or HiGHS's choice (steepest edge)
        if pricing != self._pricing[worker]:  # the strategy takes effect on a cleared solver only
            h.clearSolver()
            h.setOptionValue("simplex_dual_edge_weight_strategy", pricing)
            self._pricing[worker] = pricing
        self._sync(worker)
        self._set_bounds(worker, lo, hi)
        start_from(h, hs, warm)
        h.setOptionValue("objective_bound",
                         (cutoff - self.const) / self.vscale if np.isfinite(cutoff) else hs.kHighsInf)
        cold, self._cold[worker] = self._cold[worker] and warm is None, False
        for _ in range(MAX_ROUNDS):
            status, s = run_checked(h, hs, self.limit_s, cold)
            cold = False  # later rounds re-solve from this round's basis
            if status != hs.HighsModelStatus.kOptimal:
                return status_bound(status, hs, cutoff), None, None, None
            sol = s.getSolution()  # read before adding cuts: adding rows clears HiGHS's answer
            z, duals = np.asarray(sol.col_value), np.asarray(sol.col_dual) * self.vscale
            value = float(s.getInfo().objective_function_value) * self.vscale + self.const
            basis = basis_of(s)
            cut = self._violations(z)
            if not cut[0]:
                break
            self._share(cut)
            self._sync(worker)
        return value, z, duals, basis

    def _set_bounds(self, worker: int, lo: np.ndarray, hi: np.ndarray) -> None:
        """The node's column bounds, passing HiGHS only those that differ from the worker's
        last node (a child differs from its parent in a few columns)."""
        last = self._bounds[worker]
        if last is None:
            self.workers[worker].changeColsBounds(self.n, self.cols, lo, hi)
        else:
            cols = np.flatnonzero((lo != last[0]) | (hi != last[1])).astype(np.int32)
            if cols.size:
                self.workers[worker].changeColsBounds(cols.size, cols, lo[cols], hi[cols])
        self._bounds[worker] = (lo.copy(), hi.copy())

    def _share(self, cut) -> None:
        """Put new cuts in the pool every worker copies, in one order."""
        with self._lock:
            for key in zip(*cut):
                if key not in self._pool_keys:
                    self._pool_keys.add(key)
                    self._pool.append(key)

    def _sync(self, worker: int) -> None:
        """Add to ``worker``'s HiGHS the pool's cuts it lacks (a new row starts basic: the basis
        holds)."""
        with self._lock:
            new = self._pool[self._synced[worker]:]
            self._synced[worker] = len(self._pool)
        if new:
            self._add_cuts(self.workers[worker], *zip(*new))

    def exact(self):
        """The disaggregated LP (:class:`nodelp.NodeLP`), for the MILPs at integral nodes."""
        if self._exact is None:
            self._exact = NodeLP(self.model, self.budget, workers=0)
        return self._exact

    def milp(self, lo: np.ndarray, hi: np.ndarray, time_limit: float, cutoff: float = np.inf,
             rel_gap: float = 1e-6):
        """The node's MILP on the exact model: its fixed indicators fixed, the others binary."""
        ex = self.exact()
        fixed = np.flatnonzero(lo[:self.ny] == hi[:self.ny])
        elo, ehi = ex.fix_y(ex.lo0, ex.hi0, fixed, lo[fixed])
        return ex.milp(elo, ehi, time_limit, cutoff, rel_gap)

    def allowed(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """[G, nb] the widths each group may still take: not those of an indicator fixed at 0."""
        shut = np.zeros((self.ch.C, self.nb), bool)
        pairs = self.pairs
        off = hi[pairs[:, 2]] <= 0
        shut[pairs[off, 0], pairs[off, 1]] = True
        return ~shut[self.model.groups.channel]

    def rounded(self, z: np.ndarray) -> np.ndarray:
        """A width per group from the LP's totals: within a channel the densest rows get the
        widest widths, ``P_k`` rows at width k or wider (a group goes by its middle row)."""
        ch, g = self.ch, self.model.groups
        order = ch.order
        mid = ch.R[:-1] - ch.R[ch.start[:-1]][g.channel[order]] + g.counts[order] / 2  # rows before its middle
        choice = np.zeros(self.G, dtype=np.int64)
        for k in range(1, self.nb):
            P = z[self._col("P", g.channel[order], k)] * ch.N[g.channel[order]]
            choice[order] += (mid <= P).astype(np.int64)
        return choice
