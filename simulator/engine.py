"""Playing the epoch program (:mod:`adaqp.costmodel.program`) on every rank as a SimPy process.

- ``Compute(phase, seconds)``: ``seconds[rank]`` of work (its duration alone, as profiled) on the
  rank's compute resource. Ranks that share one — a GPU, the cores of one host, or every emulated
  host of one machine (``shared_host``) — share it as a fluid (:mod:`.compute`): each runs at the
  speed :func:`~adaqp.costmodel.durations.corun_slowdown` gives for the number of ranks computing
  at that instant, re-divided whenever one starts or stops. The program is built unscaled; the
  static ``compute_scale`` of the analytic model is this sharing with every rank busy.
- ``Exchange(traffic, hidden)``: all-to-all. A rank, when it arrives, posts its outgoing flows
  (s -> r for every r with bytes > 0) to the fluid network and, with overlap, runs ``hidden`` on
  its second stream — on the same shared compute resource. ``hidden`` already includes the
  profile's interference factor (build_program applies it, as the analytic model does). The rank goes on when every flow it
  sends or receives has *arrived* (a send completes when the receiver holds the data, as with
  NCCL's rendezvous) and its hidden compute is done. Ranks sharing a host pay its measured delay
  (:func:`~adaqp.costmodel.network.host_sync_s`): past the cores, every flow arrives no sooner
  than that long after its post; with a core per rank, a flow into a rank that posted earlier
  starts moving no sooner than that long after the receiver's post (the peer a rank waits for is
  late by at least that much; :func:`~adaqp.costmodel.network.sync_is_floor`).
- ``AllReduce(nbytes)``: a barrier, then one global span of ``network.allreduce_s`` (a collective,
  not flows: it does not load the flow resources).

Every span is kept twice: as a trace event (the runtime's format) and as a node of the dependency
graph (``Node``), whose ``gate`` points at the node that let it start — :mod:`.critical` walks it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from adaqp.cluster import ClusterSpec
from adaqp.costmodel.durations import corun_slowdown
from adaqp.costmodel.network import allreduce_s, host_delay_terms
from adaqp.costmodel.profile import HardwareProfile
from adaqp.costmodel.program import AllReduce, Compute, Exchange
from adaqp.errors import require
from adaqp.simulator.compute import SharedCompute
from adaqp.simulator.fluid import FluidNetwork
from adaqp.simulator.paths import network_layout


@dataclass(slots=True)
class Node:
    kind: str  # compute | flow | allreduce
    phase: str  # compute phase, "communicate" or "allreduce"
    rank: int  # the rank it ran on (a flow: the rank whose exchange it ended)
    start: float
    end: float
    gate: int  # the node whose end let this one start; -1: the start of the epoch
    where: str = ""  # compute: the rank (CPU) or its device (GPU); flow: "s->r via bottleneck"
    overlap: tuple = ()  # a flow: (start, end, phase) of the gated rank's hidden compute


def compute_groups(cluster: ClusterSpec) -> tuple[np.ndarray, list[str]]:
    """Which shared compute resource each rank runs on, and the resources' names: one per device
    (a GPU, or a CPU node's cores), one for the whole machine when the hosts are emulated on it."""
    P = cluster.num_ranks
    if cluster.device == "cpu" and cluster.shared_host:
        return np.zeros(P, np.int64), ["compute[host cpu]"]
    of = np.arange(P) // cluster.ranks_per_device
    kind = "cpu" if cluster.device == "cpu" else "device"
    return of, [f"compute[{kind} {i}]" for i in range(int(of.max()) + 1)]


class Epoch:
    """One simulated epoch; :meth:`run` returns ``self`` with everything recorded."""

    def __init__(self, program: list, cluster: ClusterSpec, profile: HardwareProfile,
                 sharing: str = "fair", trace: bool = True, merge_rel: float = 0.0):
        self.program, self.cluster, self.profile, self.trace = program, cluster, profile, trace
        P = self.P = cluster.num_ranks
        self.env = simpy.Environment()
        self.compute_of, self.compute_names = compute_groups(cluster)
        slowdown = lambda n: corun_slowdown(cluster, profile, n)  # noqa: E731
        self.compute = [SharedCompute(self.env, slowdown) for _ in self.compute_names]
        self.layout = network_layout(cluster, profile)
        self.synced = np.zeros(P)  # when each rank's last synchronising step ended (sync_by_gap)
        self.net = FluidNetwork(self.env, self.layout.bw_Bps, self._on_drain, sharing, merge_rel,
                                self.layout.burst_bytes, self.layout.partner, self.layout.crowd)
        self.carried = np.zeros(len(self.layout.names) + 1)  # bytes over each instance (+ the pad)
        self.nodes: list[Node] = []
        self.last_node = [-1] * P
        self.events: list[list[dict]] = [[] for _ in range(P)]
        self.busy: dict[str, np.ndarray] = {}  # phase -> seconds per rank (hidden compute included)
        self.allreduce_spans: list[tuple[float, float]] = []
        self._flows([s.traffic for s in program if isinstance(s, Exchange)])
        self._barriers: dict[int, list] = {}
        self.finished = [False] * P

    # ---- flow tables ---------------------------------------------------------------------------
    def _flows(self, traffic: list) -> None:
        """One row per ordered pair with bytes, of every exchange; rank s's row block is contiguous."""
        P, K = self.P, len(traffic)
        self.exchanges = traffic
        src, dst, k, size = [], [], [], []
        self.rowptr = np.zeros((K, P + 1), np.int64)
        offset = 0
        for i, t in enumerate(traffic):
            B = np.asarray(t.nbytes, dtype=np.float64)
            require(B.shape == (P, P), f"exchange {i} has a {B.shape} traffic matrix for {P} ranks")
            s, r = np.nonzero(B > 0)  # row-major: each sender's flows are contiguous
            self.rowptr[i] = offset + np.concatenate([[0], np.cumsum(np.bincount(s, minlength=P))])
            offset += len(s)
            src.append(s), dst.append(r), k.append(np.full(len(s), i)), size.append(B[s, r])
        cat = lambda a, dt: np.concatenate(a).astype(dt) if a else np.zeros(0, dt)  # noqa: E731
        self.src, self.dst, self.fk = cat(src, np.int64), cat(dst, np.int64), cat(k, np.int64)
        self.size = cat(size, np.float64)
        self.lat = self.layout.latency_s[self.src, self.dst]
        n = len(self.src)
        self.start, self.arrive = np.full(n, np.nan), np.full(n, np.nan)  # posted, arrived
        self.bott = np.full(n, -1, np.int64)
        self.floor = np.zeros(n)  # host-scheduling floor of each flow (network.host_sync_s)
        self.pending = np.zeros((K, P), np.int64)  # flows still to arrive, per (exchange, rank)
        np.add.at(self.pending, (self.fk, self.src), 1)
        np.add.at(self.pending, (self.fk, self.dst), 1)
        self.gate_flow = np.full((K, P), -1, np.int64)
        self.posted = np.full((K, P), np.inf)  # when each rank posted each exchange
        self.held = np.zeros(n, bool)  # a flow that left only after the host delay (a core per rank)
        self.arrival_node = np.full((K, P), -1, np.int64)
        self.waiting: dict[tuple[int, int], simpy.Event] = {}

    def _on_drain(self, ids: np.ndarray, bott: np.ndarray) -> None:
        self.bott[ids] = bott
        # path latency, after the host-scheduling floor (network.host_sync_s) for time-shared CPUs
        lat = self.lat[ids] + np.maximum(0.0, self.start[ids] + self.floor[ids] - self.env.now)
        for value in np.unique(lat):  # one timer per distinct path latency, not per flow
            sel = ids[lat == value]
            self.env.timeout(float(value)).callbacks.append(lambda _e, sel=sel: self._deliver(sel))

    def _deliver(self, ids: np.ndarray) -> None:
        now = self.env.now
        self.arrive[ids] = now
        k = self.fk[ids]
        np.subtract.at(self.pending, (k, self.src[ids]), 1)
        np.subtract.at(self.pending, (k, self.dst[ids]), 1)
        pairs = np.unique(np.concatenate([k * self.P + self.src[ids], k * self.P + self.dst[ids]]))
        for kk, rank in zip(*np.divmod(pairs, self.P)):
            if self.pending[kk, rank] == 0:
                self._settle(int(kk), int(rank), ids)

    def _settle(self, k: int, rank: int, ids: np.ndarray) -> None:
        """All of ``rank``'s flows of exchange ``k`` have arrived; ``ids`` arrived last."""
        mine = ids[(self.fk[ids] == k) & ((self.src[ids] == rank) | (self.dst[ids] == rank))]
        # the gate: of the flows that arrived last, the one posted latest (ties: lowest id)
        self.gate_flow[k, rank] = mine[np.lexsort((mine, -self.start[mine]))[0]]
        ev = self.waiting.pop((k, rank), None)
        if ev is not None:
            ev.succeed()

    # ---- the ranks -----------------------------------------------------------------------------
    def run(self) -> "Epoch":
        for rank in range(self.P):
            self.env.process(self._rank(rank))
        self.env.run()
        stuck = [r for r in range(self.P) if not self.finished[r]]
        require(not stuck, f"rank(s) {stuck[:8]} never finished (a flow that cannot move?)")
        return self

    def _rank(self, rank: int):
        k = 0
        for i, step in enumerate(self.program):
            if isinstance(step, Compute):
                yield from self._compute(rank, step.phase, float(step.seconds[rank]))
            elif isinstance(step, Exchange):
                yield from self._exchange(rank, k, step)
                k += 1
            elif isinstance(step, AllReduce):
                yield from self._allreduce(rank, i, step.nbytes)
            else:
                raise TypeError(f"unknown program step {step!r}")
        self.finished[rank] = True

    def _compute(self, rank: int, phase: str, seconds: float, hidden: bool = False, gate: int | None = None):
        """Hold the rank's compute resource; ``hidden`` runs beside the main stream (during an exchange)."""
        if seconds <= 0:
            return
        c = int(self.compute_of[rank])
        start = self.env.now
        gate = self.last_node[rank] if gate is None else gate
        yield self.compute[c].run(seconds)
        where = self.compute_names[c] if self.cluster.device != "cpu" else f"compute[rank {rank}]"
        node = self._node(Node("compute", phase, rank, start, self.env.now, gate, where))
        self.busy.setdefault(phase, np.zeros(self.P))[rank] += seconds
        self._event(rank, phase, "main", start, self.env.now)
        if not hidden:
            self.last_node[rank] = node
        return node

    def _exchange(self, rank: int, k: int, step: Exchange):
        arrived, before = self.env.now, self.last_node[rank]
        self.arrival_node[k, rank] = before
        floor_s, late_s = host_delay_terms(self.cluster, self.profile, gap_s=arrived - self.synced[rank])
        self.posted[k, rank] = arrived
        lo, hi = self.rowptr[k, rank], self.rowptr[k, rank + 1]
        if hi > lo:
            ids = np.arange(lo, hi)
            self.start[ids] = arrived
            self.floor[ids] = floor_s
            hops = self.layout.hops[rank, self.dst[ids]]
            # a core per rank (network.sync_is_floor): a flow into a rank that posted before
            # this one leaves no sooner than the host delay after that rank's post
            waited = self.posted[k, self.dst[ids]]  # inf: the receiver has not posted yet
            hold = np.where(waited <= arrived, np.maximum(0.0, waited + late_s - arrived), 0.0)
            self.held[ids] = hold > 0
            for h in np.unique(hold):
                sel = hold == h
                flows = (ids[sel], hops[sel], self.size[ids[sel]])
                if h > 0:
                    self.env.timeout(float(h)).callbacks.append(lambda _e, f=flows: self.net.add(*f))
                else:
                    self.net.add(*flows)
            self.carried += np.bincount(hops.ravel(), np.repeat(self.size[ids], hops.shape[1]),
                                        minlength=self.carried.size)
        hidden = None
        if step.hidden is not None and step.hidden[rank] > 0:
            hidden = self.env.process(self._compute(rank, step.hidden_phase, float(step.hidden[rank]), True, before))
        if self.pending[k, rank] > 0:
            ev = self.waiting[(k, rank)] = self.env.event()
            yield ev
        comm_end = self.synced[rank] = self.env.now
        hidden_node = (yield hidden) if hidden is not None else -1
        if comm_end > arrived:
            self._event(rank, "communicate", "comm", arrived, comm_end)
        if hidden_node >= 0 and self.nodes[hidden_node].end >= comm_end:
            self.last_node[rank] = hidden_node  # the hidden compute, not the messages, ended it
        elif comm_end > arrived:  # we waited for messages: the one that arrived last gated us
            self.last_node[rank] = self._flow_node(k, rank, hidden_node, comm_end)
        # else: nothing to wait for (no flows, or all arrived before we did): keep the gate

    def _flow_node(self, k: int, rank: int, hidden_node: int, end: float) -> int:
        """The flow that gated ``rank``'s exchange ``k``, from its post to ``end``."""
        f = int(self.gate_flow[k, rank])
        s, r = int(self.src[f]), int(self.dst[f])
        h = self.nodes[hidden_node] if hidden_node >= 0 else None
        t = self.exchanges[k]
        where = f"L{t.layer} {t.direction} {s}->{r} via {self.layout.names[self.bott[f]]}"
        if self.held[f]:
            where += " after the host delay"
        return self._node(Node("flow", "communicate", rank, float(self.start[f]), max(end, float(self.arrive[f])),
                               int(self.arrival_node[k, s]), where, (h.start, h.end, h.phase) if h else ()))

    def _allreduce(self, rank: int, step: int, nbytes: float):
        waiting = self._barriers.setdefault(step, [self.env.event(), 0])
        waiting[1] += 1
        if waiting[1] == self.P:  # the last to arrive starts the collective for everybody
            t = allreduce_s(self.cluster, self.profile, nbytes, gap_s=self.env.now - self.synced[rank])
            start = self.env.now
            node = self._node(Node("allreduce", "allreduce", rank, start, start + t, self.last_node[rank],
                                   "all ranks"))
            self.allreduce_spans.append((start, start + t))
            self.env.timeout(t).callbacks.append(lambda _e: waiting[0].succeed(node))
        node = yield waiting[0]
        a = self.nodes[node]
        self.synced[rank] = a.end
        if a.end > a.start:
            self._event(rank, "allreduce", "main", a.start, a.end)
        self.last_node[rank] = node

    # ---- records -------------------------------------------------------------------------------
    def _node(self, node: Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def _event(self, rank: int, name: str, track: str, start: float, end: float) -> None:
        if self.trace:
            self.events[rank].append({"rank": rank, "name": name, "track": track, "start_ns": round(start * 1e9),
                                      "end_ns": round(end * 1e9), "epoch": 0})
