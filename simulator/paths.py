"""Resource instances and the path of every flow, as the analytic model's ``exchange_loads`` sees them.

:func:`adaqp.costmodel.network.exchange_loads` sums the bytes an exchange puts on each *kind* of
resource (``endpoint_tx``, ``nic_out``, ``d2h``, ...) per instance (rank, device or node) and adds
one latency per *link* a flow crosses. Here the same rules are spelled out per ordered pair
``(s, r)``: which instances the flow holds, and its path latency. Bandwidths and latencies come
from the one :func:`~adaqp.costmodel.network.resources` call, so the simulator and the analytic
model cannot disagree on a figure — only on how flows share it in time. A test checks that
summing these paths reproduces ``exchange_loads`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from adaqp.cluster import ClusterSpec
from adaqp.costmodel.network import resources, staged_through_pcie
from adaqp.costmodel.profile import HardwareProfile
from adaqp.errors import require


@dataclass(frozen=True)
class NetworkLayout:
    """Every resource instance (name, kind, bytes/s) and every ordered pair's path.

    ``hops[s, r]`` lists instance indices, padded with ``pad`` (= number of instances), which
    stands for "no resource" and has infinite capacity in the flow model.
    """

    names: tuple[str, ...]  # "nic_out[0]", "endpoint_tx[3]", ...
    kinds: tuple[str, ...]  # the kind as exchange_loads names it
    bw_Bps: np.ndarray  # [R]
    hops: np.ndarray  # [P, P, H] int32
    latency_s: np.ndarray  # [P, P] path latency (one per link crossed, as exchange_loads adds it)
    burst_bytes: np.ndarray  # [R] token bucket of a shaped link (Network.burst_bytes); 0: none
    # a NIC side's other side (nic_out[i] <-> nic_in[i]), -1 for other instances, and the share of
    # bandwidth a NIC keeps with n = min(flows out, flows in) in flight, crowd[min(n, len - 1)]
    # (Network.crowd_factor); crowd = [1.0]: no crowding
    partner: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    crowd: np.ndarray = field(default_factory=lambda: np.ones(1))

    @property
    def pad(self) -> int:
        return len(self.names)

    def loads(self, nbytes: np.ndarray) -> np.ndarray:
        """Bytes per instance for one exchange ``nbytes[s, r]`` (what exchange_loads sums)."""
        B = np.asarray(nbytes, dtype=np.float64)
        w = np.repeat(B[:, :, None], self.hops.shape[2], axis=2)
        return np.bincount(self.hops.ravel(), weights=w.ravel(), minlength=self.pad + 1)[:self.pad]


class _Builder:
    """Collects instances of a kind and the hop columns that use them."""

    def __init__(self, P: int):
        self.names: list[str] = []
        self.kinds: list[str] = []
        self.bw: list[float] = []
        self.burst: list[float] = []
        self.cols: list[np.ndarray] = []  # [P, P] instance index or -1 (not crossed)
        self.lat = np.zeros((P, P))

    def kind(self, kind: str, count: int, bw_Bps: float, burst_bytes: float = 0.0) -> int:
        base = len(self.names)
        self.names += [f"{kind}[{i}]" for i in range(count)]
        self.kinds += [kind] * count
        self.bw += [bw_Bps] * count
        self.burst += [burst_bytes] * count
        return base

    def hop(self, used: np.ndarray, instance: np.ndarray) -> None:
        self.cols.append(np.where(used, instance, -1))


def network_layout(cluster: ClusterSpec, profile: HardwareProfile) -> NetworkLayout:
    """The instances and paths of ``cluster``'s transport (see costmodel/network.py)."""
    P = cluster.num_ranks
    res = resources(cluster, profile)
    s = np.arange(P)[:, None].repeat(P, 1)  # sender of pair (s, r)
    r = s.T.copy()
    dev, node = s // cluster.ranks_per_device, s // cluster.ranks_per_node
    rdev, rnode = r // cluster.ranks_per_device, r // cluster.ranks_per_node
    cross = node != rnode
    every = np.ones((P, P), bool)
    t = cluster.transport
    staged = staged_through_pcie(cluster, profile)
    b = _Builder(P)
    moved = every if t == "gloo-staged" else cross  # what crosses PCIe when staged
    if staged:
        require("d2h" in res and "h2d" in res, f"cluster {cluster.name!r}: staging through host needs "
                                               "PCIe figures (a pcie intra_link or d2h/h2d links in the profile)")
        d2h = b.kind("d2h", cluster.num_devices, res["d2h"].bw_Bps)
        b.hop(moved, d2h + dev)
        b.lat += np.where(moved, res["d2h"].latency_s + res["h2d"].latency_s, 0.0)
    if t in ("gloo-cpu", "gloo-staged"):
        tx = b.kind("endpoint_tx", P, res["endpoint"].bw_Bps)
        rx = b.kind("endpoint_rx", P, res["endpoint"].bw_Bps)
        b.hop(every, tx + s)
        b.lat += res["endpoint"].latency_s  # one latency for the endpoint pair, as exchange_loads
    if t == "nccl":
        out = b.kind("intra_out", cluster.num_devices, res["intra"].bw_Bps)
        inn = b.kind("intra_in", cluster.num_devices, res["intra"].bw_Bps)
        b.hop(~cross, out + dev)
        b.hop(~cross, inn + rdev)
        b.lat += np.where(cross, 0.0, res["intra"].latency_s)
    nout = None
    if cross.any():
        nout = b.kind("nic_out", cluster.nodes, res["nic"].bw_Bps, res["nic"].burst_bytes)
        nin = b.kind("nic_in", cluster.nodes, res["nic"].bw_Bps, res["nic"].burst_bytes)
        b.hop(cross, nout + node)
        b.hop(cross, nin + rnode)
        b.lat += np.where(cross, res["nic"].latency_s, 0.0)
    if t in ("gloo-cpu", "gloo-staged"):
        b.hop(every, rx + r)
    if staged:
        h2d = b.kind("h2d", cluster.num_devices, res["h2d"].bw_Bps)
        b.hop(moved, h2d + rdev)
    partner, crowd = _crowding(cluster, len(b.names), nout)
    return NetworkLayout(tuple(b.names), tuple(b.kinds), np.asarray(b.bw, dtype=np.float64),
                         _pack(b.cols, len(b.names)), b.lat, np.asarray(b.burst, dtype=np.float64),
                         partner, crowd)


def _crowding(cluster: ClusterSpec, count: int, nout: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``(partner, crowd)`` of :class:`NetworkLayout`: nic_out[i] and nic_in[i] (laid out one
    kind after the other from ``nout``) pair up; ``crowd[n]`` is ``Network.crowd_factor(n, n)``
    up to the largest flow count it was measured at."""
    partner = np.full(count, -1, np.int64)
    net = cluster.network
    if nout is None or net is None or not net.bw_crowded:
        return partner, np.ones(1)
    n = cluster.nodes
    partner[nout:nout + n] = np.arange(nout + n, nout + 2 * n)
    partner[nout + n:nout + 2 * n] = np.arange(nout, nout + n)
    top = max(net.bw_crowded)
    return partner, net.crowd_factor(np.arange(top + 1), np.arange(top + 1))


def _pack(cols: list[np.ndarray], pad: int) -> np.ndarray:
    """Hop columns -> [P, P, H], each pair's crossed instances first, then ``pad``."""
    hops = np.stack(cols, axis=2)
    hops = np.where(hops < 0, pad, hops)
    # the used hops of a pair keep their order (path order); the pads go to the end
    order = np.argsort(hops == pad, axis=2, kind="stable")
    hops = np.take_along_axis(hops, order, axis=2)
    width = int((hops != pad).sum(2).max()) if hops.size else 0
    return np.ascontiguousarray(hops[:, :, :max(width, 1)]).astype(np.int32)
