"""Which resources a message crosses, and how long an exchange holds them.

Every ordered pair (s, r) with ``B[s, r]`` bytes is a flow over a path of resources chosen by
the ClusterSpec's transport:

- ``gloo-cpu``: sender's transport endpoint -> [node NICs if the ranks sit on different nodes]
  -> receiver's endpoint (endpoints: the profile's measured ``net`` link);
- ``gloo-staged``: device-to-host copy (PCIe, shared by the ranks of a device) -> the gloo-cpu
  path -> host-to-device copy; or, when the profile measured the whole staged exchange for this
  many ranks (``staged@k``), that measurement as the endpoint and no PCIe hops;
- ``nccl``: the intra-node link between devices of one node; across nodes the NICs, plus the two
  PCIe hops when GPUDirect RDMA is off.

Flows share resources: a resource carrying L bytes is busy ``L / bw`` seconds. The analytic
exchange time is the busiest resource plus the longest path latency (chunked messages pipeline
the hops); with one flow per resource that is exactly latency + bytes / slowest bandwidth.
A NIC with ``network.bw_crowded`` carries less while its node sends to and receives from several
nodes at once (:func:`nic_crowding`). A shaped NIC (``network.burst_bytes``, the token bucket of
an emulated link) passes its bucket as fast as the rest of the path allows: the analytic model
takes every exchange to find the bucket full, so such a NIC is busy ``max(0, L - burst) / bw``;
the simulator plays the bucket's drain and refill in time (:mod:`adaqp.simulator.fluid`). CPU
ranks sharing a host pay the profile's measured ``sync_s`` per exchange (see :func:`host_sync_s`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adaqp.cluster import ClusterSpec
from adaqp.costmodel.profile import HardwareProfile, LinkModel
from adaqp.errors import require


@dataclass(frozen=True)
class Resource:
    name: str
    bw_Bps: float
    latency_s: float
    burst_bytes: float = 0.0  # token bucket of a shaped link (Network.burst_bytes)

    def busy_s(self, nbytes):
        """Seconds this resource is busy carrying ``nbytes``, the bucket (taken full) passed first."""
        return np.maximum(np.asarray(nbytes, dtype=np.float64) - self.burst_bytes, 0.0) / self.bw_Bps


def staged_measured(cluster: ClusterSpec, profile: HardwareProfile) -> LinkModel | None:
    """The profile's measurement of the whole host-staged exchange for this many ranks on a host
    ("staged@k": D2H, Gloo in the communication thread, H2D, as the runtime runs it), if any.

    When it is there, a ``gloo-staged`` exchange is costed by it alone (it is the endpoint and no
    PCIe hops are added: they are inside the measurement). Composing the Gloo exchange measured on
    host tensors with the pinned copies predicted an 8 MB exchange in 2.4 ms where the staged
    transport took 4.9 ms on an H200 (experiments/results/h200-2026-11-26, ``staged_check``)."""
    if cluster.transport != "gloo-staged":
        return None
    return profile.links.get(f"staged@{cluster.ranks_per_node}")


def staged_through_pcie(cluster: ClusterSpec, profile: HardwareProfile) -> bool:
    """Whether messages cross PCIe as hops of their own: host-staged without a measurement of the
    whole staged exchange, or NCCL across nodes without GPUDirect RDMA."""
    t = cluster.transport
    if t == "gloo-staged":
        return staged_measured(cluster, profile) is None
    return t == "nccl" and cluster.network is not None and not cluster.network.gdr


def resources(cluster: ClusterSpec, profile: HardwareProfile) -> dict[str, Resource]:
    """Bandwidth and latency of each kind of resource for this cluster and device profile."""
    out = {}
    # the endpoint: the measured staged exchange when there is one, else the Gloo exchange
    # measured with this many ranks on a host (if it was), else "net"
    net: LinkModel = staged_measured(cluster, profile) or profile.net_for(cluster.ranks_per_node)
    out["endpoint"] = Resource("endpoint", net.bw_Bps, net.latency_s)
    if cluster.network is not None:
        n = cluster.network
        out["nic"] = Resource("nic", n.bw_Bps / n.oversubscription, n.latency_s, n.burst_bytes)
    il = cluster.intra_link
    out["intra"] = Resource("intra", il.bw_Bps, il.latency_s)
    for name in ("d2h", "h2d"):
        link = profile.links.get(f"{name}_pinned")
        if link is not None:
            out[name] = Resource(name, link.bw_Bps, link.latency_s)
        elif il.kind == "pcie":
            out[name] = Resource(name, il.bw_Bps, il.latency_s)
    return out


def host_sync_s(cluster: ClusterSpec, profile: HardwareProfile, step: str = "exchange",
                gap_s: float | None = None) -> float:
    """The profile's measured delay per synchronising step for CPU ranks time-sharing one host
    (see ``HardwareProfile.sync_s``), or for GPU ranks staging through the host (gloo-staged: a
    stream synchronisation and a thread hand-off per exchange, peers time-sharing the GPU); 0 for
    NCCL. How an exchange pays it depends on the cores (:func:`sync_is_floor`): past them,
    flows cannot complete sooner than this after they are posted (peers must get the CPU to send
    and to receive) and a longer transfer hides it, a floor; with a core per rank, the flows a
    waiting peer receives start this much later, a term added to the transfer. ``gap_s``: the
    compute since the last synchronising step, where the profile measured the delay by it
    (``sync_by_gap``)."""
    if cluster.device == "cpu":
        return profile.sync(cluster.cpu_sharing, step, gap_s)
    return profile.sync(cluster.ranks_per_node, step, gap_s) if cluster.transport == "gloo-staged" else 0.0


def sync_is_floor(cluster: ClusterSpec, profile: HardwareProfile) -> bool:
    """Whether the host delay (:func:`host_sync_s`) is a floor on every flow (True), or, with a
    core per rank (CPU ranks x ``meta.compute_threads`` within ``meta.cores``), the least a rank
    waits for a later peer (False): a flow into a rank that posted ``behind`` seconds before its
    sender starts moving ``max(0, delay - behind)`` after the sender's post. Ranks posting
    together pay the delay and then the transfer; a peer later than the delay pays nothing more.

    With a core per rank the last rank to post finds its peers' data sent: they posted before
    they blocked. Two ranks of one thread on two cores: the rank that posted last left a 64-byte
    exchange 0.2-0.4 ms after its post, as on an idle host, while the same loop with equal ranks
    ran 0.8-1.9 ms slower per step than without the exchange. What a waiting rank pays is its
    peer's lateness: ranks the model sees arrive together arrive milliseconds apart, and the late
    one's bytes start moving only then, so a large message pays the delay and its transfer one
    after the other. After equal compute, two such ranks swapped 1 MB each over a 1 Gbit/s shaped
    link in 7.56-8.29 ms, and in 5.17-5.21 ms when a barrier lined them up first: 2.35-3.12 ms more,
    as a 64-byte swap lost the same way, 2.23-2.45 ms (figures: docs/contention.md; exact times:
    tests/simulator/test_sim_sync.py). Past the cores, the last poster's own transport threads
    and its peers' share the cores: every rank pays, a floor a longer transfer hides."""
    if cluster.device != "cpu":
        return True
    load = profile.core_load(cluster.cpu_sharing)
    return load is None or load > 1.0


def host_delay_terms(cluster: ClusterSpec, profile: HardwareProfile, gap_s: float | None = None
                     ) -> tuple[float, float]:
    """``(floor_s, before_s)`` of an exchange's host delay (:func:`host_sync_s`), by
    :func:`sync_is_floor`: a floor no flow ends before, or a wait before the transfer starts
    (for ranks posting together; the simulator holds each flow ``max(0, before_s - behind)``)."""
    sync = host_sync_s(cluster, profile, gap_s=gap_s)
    return (sync, 0.0) if sync_is_floor(cluster, profile) else (0.0, sync)


def _sum_by(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(group, weights=values, minlength=n)


def exchange_loads(cluster: ClusterSpec, profile: HardwareProfile, nbytes: np.ndarray):
    """Bytes per resource instance and the per-flow path latency for one exchange ``nbytes[s, r]``.

    Returns ``(loads, latency)``: ``loads`` maps a resource kind to ``(bytes per instance,
    Resource)``; ``latency`` is the ``[P, P]`` sum of latencies along each flow's path."""
    P = nbytes.shape[0]
    require(cluster.num_ranks == P, f"cluster {cluster.name!r} has {cluster.num_ranks} ranks but the "
                                    f"plan has {P} parts")
    res = resources(cluster, profile)
    rank = np.arange(P)
    dev = rank // cluster.ranks_per_device
    node = rank // cluster.ranks_per_node
    B = np.asarray(nbytes, dtype=np.float64)
    cross = node[:, None] != node[None, :]
    loads: dict[str, tuple[np.ndarray, Resource]] = {}
    lat = np.zeros((P, P))
    t = cluster.transport
    staged_pcie = staged_through_pcie(cluster, profile)
    if t in ("gloo-cpu", "gloo-staged"):
        loads["endpoint_tx"] = (B.sum(1), res["endpoint"])
        loads["endpoint_rx"] = (B.sum(0), res["endpoint"])
        lat += res["endpoint"].latency_s
    if t == "nccl":
        local = np.where(cross, 0.0, B)
        nd = cluster.num_devices
        loads["intra_out"] = (_sum_by(dev, local.sum(1), nd), res["intra"])
        loads["intra_in"] = (_sum_by(dev, local.sum(0), nd), res["intra"])
        lat += np.where(cross, 0.0, res["intra"].latency_s)
    if staged_pcie:
        require("d2h" in res and "h2d" in res, f"cluster {cluster.name!r}: staging through host needs "
                                               "PCIe figures (a pcie intra_link or d2h/h2d links in the profile)")
        moved = B if t == "gloo-staged" else np.where(cross, B, 0.0)
        nd = cluster.num_devices
        loads["d2h"] = (_sum_by(dev, moved.sum(1), nd), res["d2h"])
        loads["h2d"] = (_sum_by(dev, moved.sum(0), nd), res["h2d"])
        lat += np.where(moved > 0, res["d2h"].latency_s + res["h2d"].latency_s, 0.0)
    if cross.any():
        remote = np.where(cross, B, 0.0)
        loads["nic_out"] = (_sum_by(node, remote.sum(1), cluster.nodes), res["nic"])
        loads["nic_in"] = (_sum_by(node, remote.sum(0), cluster.nodes), res["nic"])
        lat += np.where(cross, res["nic"].latency_s, 0.0)
    return loads, np.where(B > 0, lat, 0.0)


def nic_crowding(cluster: ClusterSpec, nbytes: np.ndarray) -> np.ndarray:
    """Per node, the share of its NIC's bandwidth an exchange ``nbytes[s, r]`` gets, counting
    every cross-node flow as in flight for the whole exchange (``Network.crowd_factor``); the
    simulator counts the flows in flight at each instant instead, so a crowd that thins as small
    flows drain speeds the rest up there and not here."""
    if cluster.network is None or not cluster.network.bw_crowded:
        return np.ones(cluster.nodes)
    node = np.arange(cluster.num_ranks) // cluster.ranks_per_node
    flows = (np.asarray(nbytes) > 0) & (node[:, None] != node[None, :])
    n_out = _sum_by(node, flows.sum(1).astype(float), cluster.nodes)
    n_in = _sum_by(node, flows.sum(0).astype(float), cluster.nodes)
    return cluster.network.crowd_factor(n_out, n_in)


def exchange_s(cluster: ClusterSpec, profile: HardwareProfile, nbytes: np.ndarray,
               gap_s: float | None = None) -> tuple[float, str]:
    """Analytic duration of one all-to-all exchange, and the name of its bottleneck resource
    (``gap_s``: the compute since the last synchronising step, see :func:`host_sync_s`)."""
    loads, lat = exchange_loads(cluster, profile, nbytes)
    if not loads or not np.any(np.asarray(nbytes) > 0):
        return 0.0, "none"
    crowd = nic_crowding(cluster, nbytes)
    busy = {k: float((r.busy_s(v) / (crowd if k.startswith("nic_") else 1.0)).max())
            for k, (v, r) in loads.items()}
    worst = max(busy, key=busy.get)
    floor, before = host_delay_terms(cluster, profile, gap_s)
    if floor > busy[worst]:
        return floor + float(lat.max()), "host scheduling"
    return before + busy[worst] + float(lat.max()), worst


def allreduce_s(cluster: ClusterSpec, profile: HardwareProfile, nbytes: float, gap_s: float | None = None) -> float:
    """Gradient all-reduce: measured on one host; a ring over the slowest link otherwise; plus the
    host's sync delay (``gap_s``: see :func:`host_sync_s`)."""
    from adaqp.costmodel.durations import link_s, ring_allreduce_s

    P = cluster.num_ranks
    if P <= 1:
        return 0.0
    if cluster.transport == "gloo-cpu" and cluster.nodes == 1:
        ar = profile.links["allreduce"]
        return float(link_s(ar.latency_s, ar.bw_Bps, nbytes)) + host_sync_s(cluster, profile, "allreduce", gap_s)
    res = resources(cluster, profile)
    link = res["nic"] if cluster.nodes > 1 else (res["intra"] if cluster.transport == "nccl" else res["endpoint"])
    t = ring_allreduce_s(nbytes, P, link.bw_Bps, link.latency_s, link.burst_bytes)
    t += host_sync_s(cluster, profile, "allreduce", gap_s)
    if cluster.transport == "gloo-staged":  # gradients cross PCIe both ways
        t += float(link_s(res["d2h"].latency_s, res["d2h"].bw_Bps, nbytes))
        t += float(link_s(res["h2d"].latency_s, res["h2d"].bw_Bps, nbytes))
    return t
