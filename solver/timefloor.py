"""A quick lower bound on the time of every plan of a branch-and-bound node (:mod:`bnb`).

Why: a node whose plans all miss the budget is slow for HiGHS to prove empty (warm dual simplex
took 0.3-2 s per such node on Cora with 3,830 groups, against 0.05 s for most nodes) and is
better dropped before its LP. Each term is at least its largest row, and each row at least its
least value over the node's plans; the terms' sum is then a floor on the plan's time.

A row's least value: its constant, each group at its cheapest allowed width, and the coding
constants. A constant fixed on (``y = 1``) is paid; one still free is paid too whenever a group
of its set uses its width. So the groups a row codes for one set (one rank's encodes or decodes of
one exchange, a *block*) are floored together: over every non-empty set ``J`` of widths they may
use, the groups' cheapest widths within ``J`` plus the free constants of ``J``; the least of
these. Without the free constants the floor of Cora's empty nodes sits at 0.74-0.97 of the
budget, and they would all need an LP.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np


SEEN = 512  # allowed-width patterns remembered (about 14 KB each on the 10,000-group benchmark)


class TimeFloor:
    def __init__(self, model):
        nx, nb, G = model.nx, len(model.bits_set), model.groups.num_groups
        self.const = sum(t.floor for t in model.terms if not t.const.size)
        self.subsets = [np.array(J) for k in range(1, nb + 1) for J in combinations(range(nb), k)]
        self.jmask = np.array([[j in J for j in range(nb)] for J in self.subsets], dtype=float)  # [subsets, nb]
        keys = {}  # indicator -> its set's id (the indicators of one set differ only in width)
        self.set_of = np.array([keys.setdefault(frozenset((np.asarray(c) // nb).tolist()), len(keys))
                                for c in model.ysets], dtype=np.int64)
        self.width_of = np.array([int(np.asarray(c)[0] % nb) for c in model.ysets], dtype=np.int64)
        member = {}  # (set id, group) pairs
        for i, c in enumerate(model.ysets):
            for g in np.unique(np.asarray(c) // nb).tolist():
                member.setdefault(g, set()).add(int(self.set_of[i]))
        self.terms = [self._term(t, nx, nb, G, member) for t in model.terms if t.const.size]
        self._seen = {}  # allowed widths (packed) -> each term's part that depends on them alone

    def _term(self, t, nx, nb, G, member):
        A = t.A[:, :nx].tocoo()
        pairs, inv = np.unique(A.row.astype(np.int64) * G + A.col // nb, return_inverse=True)
        vals = np.zeros((pairs.size, nb))  # a width a group does not store costs 0 on that row
        vals[inv, A.col % nb] = A.data
        row, grp = pairs // G, pairs % G
        Ay = t.A[:, nx:].tocoo()
        sets_in_row = {}  # row -> {set id: {width: indicator}}
        for r, i in zip(Ay.row.tolist(), Ay.col.tolist()):
            sets_in_row.setdefault(r, {}).setdefault(int(self.set_of[i]), {})[int(self.width_of[i])] = i
        block = np.full(pairs.size, -1, dtype=np.int64)
        blocks = {}  # (row, set id) -> block number
        for p, (r, g) in enumerate(zip(row.tolist(), grp.tolist())):
            here = [s for s in member.get(g, ()) if s in sets_in_row.get(r, {})]
            if len(here) == 1:  # the pair belongs to exactly one set coded on this row
                block[p] = blocks.setdefault((r, here[0]), len(blocks))
        ind = np.full((len(blocks), nb), -1, dtype=np.int64)  # each block's indicator per width
        brow = np.zeros(len(blocks), dtype=np.int64)
        for (r, s), b in blocks.items():
            brow[b] = r
            for j, i in sets_in_row[r][s].items():
                ind[b, j] = i
        c0 = np.where(ind >= 0, np.asarray(t.A[:, nx:].todense())[brow[:, None], np.maximum(ind, 0)], 0.0)
        return _Term(t.floor, t.const, row, grp, vals, t.A[:, nx:].tocsr(), block, brow, ind, c0, self.subsets,
                     self.jmask)

    def seconds(self, allowed: np.ndarray, y_lo: np.ndarray, parent: np.ndarray | None = None) -> float:
        """``allowed``: [G, nb] widths each group may take; ``y_lo``: the indicators' lower bounds.
        ``parent``: the allowed widths of a node whose floor was asked for before (a child's
        parent): only the groups whose widths differ from it are recomputed."""
        if not allowed.any(axis=1).all():
            return np.inf
        key = np.packbits(allowed).tobytes()
        parts = self._seen.get(key)
        if parts is None:
            base = self._seen.get(np.packbits(parent).tobytes()) if parent is not None else None
            if base is not None and not (allowed & ~parent).any():  # a child: some groups lost a width
                changed = np.flatnonzero((parent != allowed).any(axis=1))
                parts = [t.changed_part(p, allowed, parent, changed) for t, p in zip(self.terms, base)]
            else:  # a node's on-child allows what the node allowed: its parts are known
                shut = ~allowed.all(axis=1)  # groups with a width forbidden: only their pairs change
                parts = [t.widths_part(allowed, shut) for t in self.terms]
            if len(self._seen) >= SEEN:
                self._seen.clear()
            self._seen[key] = parts
        return self.const + sum(t.seconds(p, y_lo) for t, p in zip(self.terms, parts))


def _pairs_of(groups: np.ndarray, G: int):
    """Pair indices sorted by group and each group's first position: the pairs of a set of groups
    without a scan over every pair."""
    order = np.argsort(groups, kind="stable")
    return order, np.searchsorted(groups[order], np.arange(G + 1))


def _select(index, groups: np.ndarray) -> np.ndarray:
    order, start = index
    lo, n = start[groups], start[groups + 1] - start[groups]
    return order[np.repeat(lo - np.cumsum(n) + n, n) + np.arange(n.sum())]


class _Term:
    """One term's rows, with every pair's least cost when all widths are allowed kept, so a node
    recomputes only the pairs of groups that lost a width (the search's screen took 0.65 s of a
    5.3 s search on the 10,000-group benchmark recomputing them all)."""

    def __init__(self, floor, const, row, grp, vals, Ay, block, brow, ind, c0, subsets, jmask):
        self.floor, self.const, self.Ay, self.brow, self.ind, self.c0 = floor, const, Ay, brow, ind, c0
        loose = block < 0
        self.row_l, self.grp_l, self.vals_l = row[loose], grp[loose], vals[loose]
        self.least_l = self.vals_l.min(axis=1)
        self.rows0 = const + np.bincount(self.row_l, weights=self.least_l, minlength=const.size)
        self.grp_b, self.vals_b, self.bb = grp[~loose], vals[~loose], block[~loose]
        self.subsets, self.jmask = subsets, jmask
        self.m_b = self._subset_mins(self.vals_b)  # [block pairs, subsets]
        self.blk0 = self._per_block(self.bb, self.m_b) if brow.size else None
        self.G = int(grp.max()) + 1 if grp.size else 0  # groups above have no pair in this term
        self.by_group_l, self.by_group_b = _pairs_of(self.grp_l, self.G), _pairs_of(self.grp_b, self.G)

    def _per_block(self, blocks: np.ndarray, per_subset: np.ndarray) -> np.ndarray:
        """[blocks, subsets] sums of ``per_subset`` rows by block."""
        return np.stack([np.bincount(blocks, weights=per_subset[:, k], minlength=self.brow.size)
                         for k in range(per_subset.shape[1])], axis=1)

    def _subset_mins(self, cost: np.ndarray) -> np.ndarray:
        return np.stack([cost[:, J].min(axis=1) for J in self.subsets], axis=1) if len(cost) else \
            np.zeros((0, len(self.subsets)))

    def widths_part(self, allowed: np.ndarray, shut: np.ndarray):
        """What depends on the allowed widths alone: rows without the coding constants, and each
        block's least per width subset."""
        hit = np.flatnonzero(shut[self.grp_l])
        rows = self.rows0
        if hit.size:
            least = np.where(allowed[self.grp_l[hit]], self.vals_l[hit], np.inf).min(axis=1)
            rows = rows + np.bincount(self.row_l[hit], weights=least - self.least_l[hit], minlength=rows.size)
        blk = self.blk0
        if self.brow.size:
            hit = np.flatnonzero(shut[self.grp_b])
            if hit.size:
                m = self._subset_mins(np.where(allowed[self.grp_b[hit]], self.vals_b[hit], np.inf))
                blk = blk + self._per_block(self.bb[hit], m - self.m_b[hit])
        return rows, blk

    def changed_part(self, part, allowed: np.ndarray, before: np.ndarray, changed: np.ndarray):
        """:meth:`widths_part` from ``part``, computed for the widths ``before``, where only the
        groups ``changed`` allow other widths now (0.65 -> 0.1 ms on the benchmark's children,
        whose floors were 40 % of the search's Python time)."""
        rows, blk = part
        changed = changed[changed < self.G]
        hit = _select(self.by_group_l, changed)
        if hit.size:
            g, v = self.grp_l[hit], self.vals_l[hit]
            delta = np.where(allowed[g], v, np.inf).min(axis=1) - np.where(before[g], v, np.inf).min(axis=1)
            rows = rows + np.bincount(self.row_l[hit], weights=delta, minlength=rows.size)
        if self.brow.size:
            hit = _select(self.by_group_b, changed)
            if hit.size:
                g, v = self.grp_b[hit], self.vals_b[hit]
                now = self._subset_mins(np.where(allowed[g], v, np.inf))
                # a subset of widths the pair lost entirely is inf now (and may have been before)
                was = self._subset_mins(np.where(before[g], v, np.inf))
                delta = now - np.where(np.isinf(now), 0.0, was)
                blk = blk + self._per_block(self.bb[hit], delta)
        return rows, blk

    def seconds(self, part, y_lo: np.ndarray) -> float:
        rows, blk = part
        rows = rows + self.Ay @ y_lo
        if self.brow.size:
            free_c0 = np.where((self.ind >= 0) & (y_lo[np.maximum(self.ind, 0)] < 0.5), self.c0, 0.0)
            best = np.min(blk + free_c0 @ self.jmask.T, axis=1)
            rows = rows + np.bincount(self.brow, weights=best, minlength=rows.size)
        return max(self.floor, float(rows.max()))
