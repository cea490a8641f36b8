"""Flows sharing links as a fluid: bandwidth divided among the flows in flight, re-divided whenever
a flow starts or drains. No per-chunk events.

Why a fluid and not chunked messages on ``simpy.Resource`` links: an exchange of P ranks has P²
flows. Chunked store-and-forward needs hundreds of chunks per flow before a multi-hop path
pipelines to within 1 % of ``latency + bytes / slowest bandwidth`` (the analytic figure), i.e.
millions of events at 64 ranks. A fluid is the limit of infinitely small chunks: a lone flow over
any path takes exactly ``bytes / bottleneck bandwidth``, and concurrent flows share each link's
bandwidth continuously. Nothing happens between two updates, so the cost is (number of distinct
start and drain instants) x (one re-division of bandwidth over the flows in flight, vectorised).

Cost in practice: balanced all-to-alls post and drain their flows in a few batches (tens of
updates per epoch at any rank count). Irregular traffic drains flow by flow — up to one update
per flow; ``merge_rel`` lets flows within that fraction of their bytes of done drain together
(an error of at most that fraction of each such flow's duration).

Sharing policies:

- ``fair`` (default): max-min fairness by progressive filling — every flow gets an equal share of
  its tightest resource, and what a flow cannot use (it is held back elsewhere) goes to the
  others. This is how TCP streams and NIC queues interleave packets of concurrent messages; two
  equal messages on one link both finish at 2t.
- ``fifo``: a link serves messages one at a time in the order they were posted (the classic
  ``simpy.Resource`` link), greedily: a message that is blocked on one hop leaves its other hops
  to later messages. Two equal messages on one link finish at t and 2t.

Token buckets (shaped links, ``tc tbf``): a resource with ``burst_bytes > 0`` holds tokens, full at
the start, refilled at its bandwidth, spent by the bytes it carries. While it holds tokens it
limits no flow (the rest of each path does); when they run out it carries at most its bandwidth,
and an update is scheduled for that instant. Tokens that gather while a drained bucket carries
less than its bandwidth count from the next update on (a start or a drain).

Crowded NICs (``Network.bw_crowded``): a resource with a partner (a NIC's other direction) carries
``crowd[min(n, len - 1)]`` of its bandwidth, n the smaller of the flows in flight on it and on
its partner; re-evaluated at every update, so a crowd that thins as flows drain gives the rest
the full rate back. Its bucket still refills at the full bandwidth (the shaper's rate).

Latency is not a property of the fluid: the caller adds the path latency to each flow's drain
time (the last byte leaves at drain, arrives one path latency later).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import simpy

from adaqp.errors import require

SHARING = ("fair", "fifo")
_TIE = 1e-12  # relative slack that treats float-rounded equal times / levels as equal


def max_min_rates(hops: np.ndarray, cap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Max-min fair rates of flows over ``hops[m, H]`` (indices into ``cap``; ``cap`` may hold inf
    for padding), and each flow's bottleneck (the instance that saturated first on its path).

    Progressive filling: all unfrozen flows rise together; when a resource fills, the flows
    through it freeze at that level. Each round touches only the resources (O(R)) and the flows
    that freeze, so a solve costs one sort of the hops plus O(levels x R).
    """
    m, H = hops.shape
    R = cap.size
    flat = hops.ravel()
    on = np.bincount(flat, minlength=R)
    by_res = np.argsort(flat.astype(np.uint16) if R < 2**16 else flat, kind="stable") // H
    ptr = np.concatenate([[0], np.cumsum(on)])
    cnt = on.astype(np.float64)  # unfrozen flows on each resource
    finite = np.isfinite(cap)
    left = np.where(finite, np.maximum(cap, 0.0), 0.0)
    rate, bott = np.zeros(m), np.full(m, -1, np.int64)
    frozen = np.zeros(m, bool)
    level = 0.0
    live = finite & (cnt > 0)
    while live.any():
        room = np.full(R, np.inf)
        room[live] = left[live] / cnt[live]
        step = room.min()
        level += step
        left[live] = np.maximum(left[live] - cnt[live] * step, 0.0)  # clip rounding below 0
        full = np.flatnonzero(room <= step * (1 + _TIE))
        fl = _flows_on(full, ptr, on, by_res)
        fl = fl[~frozen[fl]]
        if full.size > 1:  # a flow may cross two resources that filled together
            fl = np.flatnonzero(np.bincount(fl, minlength=m) > 0)
        frozen[fl] = True
        rate[fl] = level
        sat = np.zeros(R, bool)
        sat[full] = True
        h = hops[fl]
        bott[fl] = h[np.arange(fl.size), sat[h].argmax(1)]
        cnt -= np.bincount(h.ravel(), minlength=R)
        live = finite & (cnt > 0)
    require(frozen.all(), "a flow crosses no resource of finite bandwidth")
    return rate, bott


def _flows_on(res: np.ndarray, ptr: np.ndarray, on: np.ndarray, by_res: np.ndarray) -> np.ndarray:
    """The flows crossing any of ``res`` (concatenated CSR slices, without a Python loop)."""
    lens = on[res]
    first = np.repeat(ptr[res] - (np.cumsum(lens) - lens), lens)
    return by_res[np.arange(int(lens.sum())) + first]


def fifo_rates(hops: np.ndarray, cap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy in posting order (the row order): each flow takes what its path has left."""
    left = cap.astype(np.float64).copy()
    rate, bott = np.zeros(hops.shape[0]), np.full(hops.shape[0], -1, np.int64)
    for i, h in enumerate(hops):
        j = int(np.argmin(left[h]))
        rate[i], bott[i] = left[h[j]], h[j]
        left[h] -= rate[i]
        left[h] = np.maximum(left[h], 0.0)
    return rate, bott


class FluidNetwork:
    """Flows in flight over resource instances of capacity ``bw_Bps`` (bytes/s), each with a token
    bucket of ``burst_bytes`` (0 or None: none).

    ``add(ids, hops, nbytes)`` starts flows now; ``on_drain(ids, bottlenecks)`` is called at the
    simulated time their last byte leaves. Starts at one instant are batched into one update.
    Utilisation needs no bookkeeping here: a resource is busy ``bytes it carried / bandwidth``.
    """

    def __init__(self, env: simpy.Environment, bw_Bps: np.ndarray, on_drain: Callable,
                 sharing: str = "fair", merge_rel: float = 0.0, burst_bytes: np.ndarray | None = None,
                 partner: np.ndarray | None = None, crowd: np.ndarray | None = None):
        require(sharing in SHARING, f"sharing must be one of {', '.join(SHARING)}, got {sharing!r}")
        require(0.0 <= merge_rel < 1.0, f"merge_rel must be in [0, 1), got {merge_rel}")
        self.env, self.on_drain, self.merge_rel = env, on_drain, merge_rel
        self.cap = np.append(np.asarray(bw_Bps, dtype=np.float64), np.inf)  # last: the pad
        burst = np.zeros(self.cap.size - 1) if burst_bytes is None else np.asarray(burst_bytes, dtype=np.float64)
        require(burst.shape == (self.cap.size - 1,) and bool(np.all(burst >= 0)),
                "burst_bytes must give every resource a bucket of >= 0 bytes")
        self.burst = np.append(burst, 0.0)
        self.refill = np.where(self.burst > 0, np.append(self.cap[:-1], 0.0), 0.0)  # tokens/s: the bandwidth
        self.tokens = self.burst.copy()  # buckets start full: the links idled before
        R = self.cap.size - 1
        self.partner = np.full(R, -1, np.int64) if partner is None else np.asarray(partner, np.int64)
        require(self.partner.shape == (R,), "partner must name one instance (or -1) per resource")
        self._paired = np.flatnonzero(self.partner >= 0)  # the NIC sides that crowding can slow
        self.crowd = np.ones(1) if crowd is None else np.asarray(crowd, dtype=np.float64)
        require(self.crowd.ndim == 1 and self.crowd.size >= 1 and bool(np.all(self.crowd > 0)),
                "crowd must be a non-empty list of bandwidth shares > 0")
        self._rates = max_min_rates if sharing == "fair" else fifo_rates
        self.ids = np.zeros(0, np.int64)  # flows in flight, in posting order
        self.hops = np.zeros((0, 1), np.int32)
        self.left = np.zeros(0)  # bytes still to send
        self.size = np.zeros(0)
        self.rate = np.zeros(0)
        self.bott = np.zeros(0, np.int64)
        self._new: list[tuple] = []
        self._last = 0.0  # when ``left`` was last brought up to date
        self._gen = 0  # the current wake-up; older ones are stale
        self._queued = False
        self.updates = 0  # rate recomputations, for the record

    def add(self, ids: np.ndarray, hops: np.ndarray, nbytes: np.ndarray) -> None:
        if len(ids) == 0:
            return
        self._new.append((np.asarray(ids, np.int64), np.asarray(hops, np.int32), np.asarray(nbytes, float)))
        if not self._queued:  # update once, after every start of this instant is posted
            self._queued = True
            self._wake_at(0.0)

    def _wake_at(self, delay: float) -> None:
        self._gen += 1
        gen = self._gen
        self.env.timeout(delay).callbacks.append(lambda _ev: self._update(gen))

    def _update(self, gen: int) -> None:
        if gen != self._gen:
            return  # superseded by a later start
        self._queued = False
        now = self.env.now
        self._spend(now - self._last)
        self.left -= self.rate * (now - self._last)
        self._last = now
        self._drain(now)
        self._admit()
        if self.ids.size:
            self.updates += 1
            self.rate, self.bott = self._rates(self.hops, self._capacity())
            with np.errstate(divide="ignore"):
                eta = np.where(self.rate > 0, self.left / self.rate, np.inf)
            nxt = min(float(eta.min()), self._empties_in())
            require(np.isfinite(nxt), "flows in flight but none can move (a resource of zero bandwidth?)")
            self._wake_at(max(nxt, 0.0))

    # ---- token buckets ---------------------------------------------------------------------------
    def _load(self) -> np.ndarray:
        """Bytes/s each resource carries at the current rates."""
        return np.bincount(self.hops.ravel(), np.repeat(self.rate, self.hops.shape[1]), minlength=self.cap.size)

    def _spend(self, dt: float) -> None:
        """Tokens after ``dt`` seconds at the current rates: refilled at the bandwidth, spent by the
        bytes carried; below a thousandth of the bucket counts as empty (rounding)."""
        if dt <= 0 or not self.burst.any():
            return
        self.tokens = np.clip(self.tokens + (self.refill - self._load()) * dt, 0.0, self.burst)
        self.tokens[self.tokens <= 1e-3 * self.burst] = 0.0

    def _capacity(self) -> np.ndarray:
        """A resource holding tokens limits no flow; an empty bucket leaves its bandwidth, the
        crowded share of it for a NIC carrying several flows each way."""
        cap = self._crowded()
        return np.where(self.tokens > 0, np.inf, cap) if self.tokens.any() else cap

    def _crowded(self) -> np.ndarray:
        paired = self._paired
        if self.crowd.size == 1 or not paired.size:
            return self.cap
        on = np.bincount(self.hops.ravel(), minlength=self.cap.size)
        n = np.minimum(on[paired], on[self.partner[paired]])
        cap = self.cap.copy()
        cap[paired] *= self.crowd[np.minimum(n, self.crowd.size - 1)]
        return cap

    def _empties_in(self) -> float:
        """Seconds until the first bucket that is being spent runs out (inf: none)."""
        if not self.tokens.any():
            return np.inf
        net = self._load() - self.refill
        draining = (self.tokens > 0) & (net > 0)
        return float((self.tokens[draining] / net[draining]).min()) if draining.any() else np.inf

    def _drain(self, now: float) -> None:
        # finished: less than a rounding error of bytes left (equal flows drain in one batch)
        slack = np.maximum(self.rate * (_TIE * max(now, 1e-9)), self.merge_rel * self.size)
        done = self.left <= slack
        if done.any():
            ids, bott = self.ids[done], self.bott[done]
            keep = ~done
            self.ids, self.hops, self.left = self.ids[keep], self.hops[keep], self.left[keep]
            self.size = self.size[keep]
            self.rate, self.bott = self.rate[keep], self.bott[keep]
            self.on_drain(ids, bott)

    def _admit(self) -> None:
        if not self._new:
            return
        ids, hops, nbytes = zip(*self._new)
        self._new = []
        width = max(self.hops.shape[1], *(h.shape[1] for h in hops))
        pad = self.cap.size - 1
        widen = lambda h: np.pad(h, ((0, 0), (0, width - h.shape[1])), constant_values=pad)  # noqa: E731
        self.ids = np.concatenate([self.ids, *ids])
        self.hops = np.concatenate([widen(self.hops), *map(widen, hops)])
        self.left = np.concatenate([self.left, *nbytes])
        self.size = np.concatenate([self.size, *nbytes])
        self.rate = np.concatenate([self.rate, np.zeros(sum(len(i) for i in ids))])
