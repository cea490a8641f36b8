"""The cost model, linear in the solver's choices: one source of truth with the analytic model.

Variables ``z = [x, y]``: ``x[g, j]`` = 1 when group ``g`` is sent at ``bits_set[j]``; ``y`` are
indicators "rank p codes some rows at width j in exchange k" that carry the per-call intercept of
the coding ops (``encode_mixed_s`` pays an op's constant once per width present).

The time is a sum of *terms*, each ``max(floor, max_i(A_i z + c_i))``, built from the very functions
the analytic model calls (where the profile has ``sync_by_gap``, the sync floors are looked up
at the compute of the 8-bit program, so the sum equals the analytic time at 8 bits only):

- an exchange's duration is :func:`network.exchange_s`: busiest resource instance plus the longest
  path latency. ``network.exchange_loads`` is linear in the byte matrix, so it is probed with one
  unit flow per pair to learn which instances each pair loads; each instance is one row.
- coding is ``durations.encode_s`` / ``decode_s`` evaluated per group (their marginal part) plus the
  intercept through ``y``; scaled by ``durations.compute_scale`` like every compute step.

``scope="epoch"`` walks :func:`program.build_program` as ``analytic.estimate`` does: every compute
segment between two synchronising steps is a term (slowest rank or device), every exchange a term
(with overlap its floor is the hidden compute), the all-reduce a constant. The sum *is* the
analytic epoch time for linear op models (log-log ones are over-estimated: conservative).
``scope="exchange"``: per exchange, its duration + the slowest encode + the slowest decode.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from adaqp.costmodel import durations as D
from adaqp.costmodel.analytic import device_max
from adaqp.costmodel.network import allreduce_s, exchange_loads, host_delay_terms, nic_crowding
from adaqp.costmodel.program import AllReduce, Compute, Exchange, build_program
from adaqp.costmodel.workload import directed_pair_rows
from adaqp.solver.groups import Groups

from adaqp.errors import require
from adaqp.schedule import Schedule


@dataclass(frozen=True)
class Term:
    floor: float
    const: np.ndarray  # [R]
    A: sp.csr_matrix  # [R, num_z]
    label: str

    def value(self, z: np.ndarray) -> float:
        return max(self.floor, float((self.A @ z + self.const).max())) if self.const.size else self.floor


@dataclass
class LinearModel:
    groups: Groups
    bits_set: tuple[int, ...]
    terms: list
    ysets: list  # (x columns, rows) per y indicator, in y order
    scope: str

    @property
    def nx(self) -> int:
        return self.groups.num_groups * len(self.bits_set)

    @property
    def num_z(self) -> int:
        return self.nx + len(self.ysets)

    def z(self, choice: np.ndarray) -> np.ndarray:
        """``z`` for one width index per group (y set where any of its x is)."""
        nb, G = len(self.bits_set), self.groups.num_groups
        x = np.zeros(self.nx)
        x[np.arange(G) * nb + np.asarray(choice, dtype=np.int64)] = 1.0
        return np.concatenate([x, (self._members @ x > 0).astype(float)])

    @functools.cached_property
    def _members(self) -> sp.csr_matrix:
        """[y, x] 1 where x is in y's set: ``z`` is called for every plan a search tries (a loop
        over the sets took 0.4 ms a call on the 10,000-group benchmark)."""
        rows = np.repeat(np.arange(len(self.ysets)), [len(c) for c in self.ysets])
        cols = np.concatenate([np.asarray(c, dtype=np.int64) for c in self.ysets]) if self.ysets else \
            np.zeros(0, np.int64)
        return sp.csr_matrix((np.ones(cols.size), (rows, cols)), shape=(len(self.ysets), self.nx))

    def time(self, choice: np.ndarray) -> float:
        """The plan's time: every term's ``max(floor, max(A z + c))`` from one product with the
        terms' rows stacked (the solver's searches call this thousands of times: a product per term
        took 0.29 ms a call on the 10,000-group benchmark)."""
        A, const, starts, live, floors = self._stacked
        value = floors.copy()  # each term's floor; those with rows: max(floor, their largest row)
        if live.size:
            value[live] = np.maximum(floors[live], np.maximum.reduceat(A @ self.z(choice) + const, starts))
        # summed in the terms' order by Python, as the per-term sum was: a last-bit difference
        # (numpy's pairwise sum) flips which raises _raise_back finds fitting, and with them the
        # incumbents a search finds (CiteSeer's certify: 852 -> 1,617 node LPs)
        return float(sum(value.tolist()))

    @functools.cached_property
    def _stacked(self):
        """The terms with rows, stacked: ``(A, const, each one's first row, which terms they are,
        every term's floor)``."""
        live = np.array([i for i, t in enumerate(self.terms) if t.const.size], dtype=np.int64)
        floors = np.array([t.floor for t in self.terms], dtype=float)
        if not live.size:
            return None, None, live, live, floors
        rows = [self.terms[i] for i in live.tolist()]
        starts = np.cumsum([0] + [t.const.size for t in rows[:-1]])
        return sp.vstack([t.A for t in rows]).tocsr(), np.concatenate([t.const for t in rows]), starts, live, floors


def _units(cluster, P: int) -> np.ndarray:
    """Which ranks add up (ranks sharing a GPU serialise) - as ``analytic.device_max``."""
    if cluster.device != "cpu" and cluster.ranks_per_device > 1:
        return np.arange(P) // cluster.ranks_per_device
    return np.arange(P)


def _pair_instances(cluster, profile, P: int):
    """Per ordered pair, the resource instances one byte of it loads: ``{(s, r): [(row, amount)]}``
    and each instance's bandwidth, token bucket and NIC node (-1: not a NIC), found by probing the
    (linear) ``exchange_loads``."""
    index, bw, burst, nic, entries = {}, [], [], [], {}
    for s in range(P):
        for r in range(P):
            if s == r:
                continue
            B = np.zeros((P, P))
            B[s, r] = 1.0
            loads, _ = exchange_loads(cluster, profile, B)
            for kind, (v, res) in loads.items():
                for i in np.flatnonzero(v):
                    if (kind, i) not in index:
                        index[(kind, i)] = len(bw)
                        bw.append(res.bw_Bps)
                        burst.append(res.burst_bytes)
                        nic.append(int(i) if kind.startswith("nic_") else -1)
                    entries.setdefault((s, r), []).append((index[(kind, int(i))], float(v[i])))
    return entries, np.array(bw), np.array(burst), np.array(nic, dtype=np.int64)


class _Builder:
    def __init__(self, groups: Groups, bits_set, cluster, profile, stats, scale: float):
        self.g, self.bits, self.nb = groups, tuple(bits_set), len(bits_set)
        self.cluster, self.profile, self.stats, self.scale = cluster, profile, stats, scale
        self.P = stats.num_parts
        self.layer, self.s, self.r = groups.attr(0), groups.attr(2), groups.attr(3)
        self.dir = np.array([c[1] for c in groups.channels])[groups.channel] if groups.channels else np.zeros(0, str)
        self.nbytes = groups.nbytes(self.bits)
        self.entries, self.bw, self.burst, self.nic = _pair_instances(cluster, profile, self.P)
        self.ysets: list = []
        self.pieces: dict = {}  # (k, side) -> per rank (cols, vals)

    def in_exchange(self, k):
        return np.flatnonzero((self.layer == k[0]) & (self.dir == k[1]))

    def exchange_term(self, k, floor: float, label: str, gap_s: float | None = None):
        """``busy(instance) + max latency`` of exchange k: one row per resource instance."""
        gs = self.in_exchange(k)
        if gs.size == 0:
            return _term(floor, np.zeros(0), [], label)
        flows = directed_pair_rows(self.stats, k[1])
        _, lat = exchange_loads(self.cluster, self.profile, (flows > 0).astype(float))
        # every flow of the plan carries bytes at any width: the NICs' crowding is a constant here
        crowd = nic_crowding(self.cluster, flows)
        bw = self.bw * np.where(self.nic >= 0, crowd[np.maximum(self.nic, 0)], 1.0)
        trip = []
        for (s, r), inst in self.entries.items():
            sel = gs[(self.s[gs] == s) & (self.r[gs] == r)]
            for row, amount in inst:
                for j in range(self.nb):
                    trip.append((np.full(sel.size, row), sel * self.nb + j,
                                 self.nbytes[sel, j] * amount / bw[row]))
        host_floor, before = host_delay_terms(self.cluster, self.profile, gap_s)  # as network.exchange_s
        floor = max(floor, host_floor + before + float(lat.max()))
        # a shaped NIC is busy max(0, L - burst) / bw (Resource.busy_s): the 0 is under the floor
        return _term(floor, float(lat.max()) + before - self.burst / bw, trip, label)

    def segment_term(self, fixed: np.ndarray, pieces, units: np.ndarray, label: str):
        """Slowest unit of one compute segment: fixed compute + the coding pieces it holds."""
        trip = []
        for k, side in pieces:
            for p, (cols, vals) in enumerate(self.coding(k, side)):
                trip.append((np.full(cols.size, units[p]), cols, vals))
        const = np.bincount(units, weights=fixed, minlength=units.max() + 1)
        return _term(0.0, const, trip, label)

    def coding(self, k, side):
        """Per rank ``(cols, vals)``: that rank's encode (sender) or decode (receiver) time."""
        if (k, side) in self.pieces:
            return self.pieces[(k, side)]
        gs = self.in_exchange(k)
        fn = D.encode_s if side == "enc" else D.decode_s
        owner = (self.s if side == "enc" else self.r)[gs]
        n = self.g.counts[gs]
        w = self.g.widths[k[0]]
        out = []
        for p in range(self.P):
            mine = gs[owner == p]
            cols, vals = [], []
            for j, b in enumerate(self.bits):
                if mine.size == 0:
                    continue
                c0 = float(fn(self.profile, 0, w, b))
                rows = n[owner == p]
                total = float(rows.sum())
                # per row: the op's time for the rank's whole message at this width, less the
                # constant, spread over its rows. Exact for a linear op model; for a measured
                # curve (log-log, nearest) the secant at the size the message has when every row
                # takes this width, not the curve at each group's few rows, summed
                per_row = (float(fn(self.profile, total, w, b)) - c0) / total if total > 0 else 0.0
                cols.append(mine * self.nb + j)
                vals.append(rows * per_row * self.scale)
                if c0 > 0:  # the op's constant, paid once if any row of p codes at this width
                    self.ysets.append(mine * self.nb + j)
                    cols.append(np.array([-len(self.ysets)]))  # y index, resolved in build()
                    vals.append(np.array([c0 * self.scale]))
            out.append((np.concatenate(cols) if cols else np.zeros(0, int),
                        np.concatenate(vals) if vals else np.zeros(0)))
        self.pieces[(k, side)] = out
        return out


def _term(floor: float, const: np.ndarray, trip: list, label: str):
    """A term before the y columns are numbered: COO triplets, y as negative columns."""
    rows = [t[0] for t in trip] or [np.zeros(0, int)]
    cols = [t[1] for t in trip] or [np.zeros(0, int)]
    vals = [t[2] for t in trip] or [np.zeros(0)]
    return (float(floor), np.asarray(const, float), np.concatenate(rows).astype(np.int64),
            np.concatenate(cols).astype(np.int64), np.concatenate(vals).astype(float), label)


def _finish(raw, nx: int, num_z: int) -> Term:
    floor, const, r, c, v, label = raw
    c = np.where(c < 0, nx - c - 1, c)  # y number i was stored as -(i + 1)
    A = sp.csr_matrix((v, (r, c)), shape=(const.size, num_z))
    return Term(floor, const, A, label)


def _epoch_terms(b: _Builder, shape, schedule, units) -> list:
    """Walk the analytic model's program: segments, exchanges and the all-reduce as terms."""
    prog = build_program(b.stats, shape, schedule, b.profile, 8, b.scale,
                         D.overlap_interference(b.cluster, b.profile))
    raw, fixed, pieces, last, seg = [], np.zeros(b.P), [], None, np.zeros(b.P)
    for st in prog:
        if isinstance(st, Compute):
            seg = seg + st.seconds
            if st.phase == "quantize":  # encodes the next exchange: resolved when it comes
                pieces.append(("next", "enc"))
            elif st.phase == "dequantize":
                pieces.append((last, "dec"))
            else:
                fixed = fixed + st.seconds
            continue
        k = (st.traffic.layer, st.traffic.direction) if isinstance(st, Exchange) else None
        pieces = [(k if p == "next" else p, side) for p, side in pieces]
        raw.append(b.segment_term(fixed, pieces, units, f"compute before {k or 'all-reduce'}"))
        # the sync delay by the compute since the last step (sync_by_gap): the segment as this
        # 8-bit program has it, coding included; a constant of the term, not a function of x
        gap = device_max(b.cluster, seg)
        fixed, pieces, seg = np.zeros(b.P), [], np.zeros(b.P)
        if isinstance(st, AllReduce):
            raw.append(_term(allreduce_s(b.cluster, b.profile, st.nbytes, gap), np.zeros(0), [], "all-reduce"))
            continue
        hidden = device_max(b.cluster, st.hidden) if st.hidden is not None else 0.0
        raw.append(b.exchange_term(k, hidden, f"exchange {k}", gap))
        last = k
    raw.append(b.segment_term(fixed, pieces, units, "final compute"))
    return raw


def _exchange_terms(b: _Builder, exchanges, units) -> list:
    raw = []
    for k in exchanges:
        raw.append(b.exchange_term(k, 0.0, f"exchange {k}"))
        for side in ("enc", "dec"):
            raw.append(b.segment_term(np.zeros(b.P), [(k, side)], units, f"{side} {k}"))
    return raw


def build_model(groups: Groups, bits_set, stats, shape, schedule, cluster, profile,
                scope: str = "epoch") -> LinearModel:
    """The linear time model of ``groups`` at widths ``bits_set`` (see the module doc)."""
    require(scope in ("epoch", "exchange"), f"scope must be epoch or exchange, got {scope!r}")
    require(Schedule.parse(schedule).quantize, f"schedule {schedule!r} does not quantize: no bit-widths to plan")
    # its terms are per waited exchange; a stale schedule's exchanges are one, off the critical path
    require(not Schedule.parse(schedule).stale, f"schedule {schedule!r} is stale: the solver plans only "
                                                "waited exchanges (give pipegcn-q a uniform --bits)")
    require(cluster.num_ranks == stats.num_parts,
            f"cluster has {cluster.num_ranks} ranks but the plan {stats.num_parts} parts")
    b = _Builder(groups, bits_set, cluster, profile, stats, D.compute_scale(cluster, profile))
    units = _units(cluster, b.P)
    exchanges = [(l, d) for l in range(groups.num_layers) for d in ("fwd", "bwd") if d == "fwd" or l >= 1]
    raw = _epoch_terms(b, shape, schedule, units) if scope == "epoch" else _exchange_terms(b, exchanges, units)
    nx = groups.num_groups * b.nb
    num_z = nx + len(b.ysets)
    return LinearModel(groups, b.bits, [_finish(t, nx, num_z) for t in raw], b.ysets, scope)
