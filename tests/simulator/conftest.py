"""Small hand-checkable profiles, clusters and programs for the simulator tests (as fixtures)."""

from types import SimpleNamespace

import numpy as np
import pytest

from adaqp.cluster import ClusterSpec, Link, Network
from adaqp.costmodel.profile import OPS, HardwareProfile, LinkModel, OpModel
from adaqp.costmodel.workload import Exchange as Traffic


def profile(net=(0.0, 1e6), device="cpu", pcie=None, interference=1.0, spmm=1e-9):
    """Zero-cost ops except a linear spmm; ``net`` = (latency, bytes/s) of the transport endpoint;
    ``pcie`` = (latency, bytes/s) of pinned D2H and H2D copies."""
    ops = {name: OpModel(f, tuple([0.0] * len(f))) for name, f in OPS.items()}
    for name in ("spmm_fwd", "spmm_bwd"):
        ops[name] = OpModel(OPS[name], (1e-6, spmm, spmm / 4))
    ops["gemm_fwd"] = ops["gemm_bwd"] = OpModel(OPS["gemm_fwd"], (1e-6, 1e-12, 1e-10))
    ops["adam"] = OpModel(OPS["adam"], (1e-6, 1e-10))
    ops["quantize_b4"] = ops["dequantize_b4"] = OpModel(OPS["quantize_b4"], (1e-6, 1e-11, 1e-9))
    links = {"net": LinkModel(*net), "allreduce": LinkModel(1e-5, 1e9)}
    if pcie is not None:
        links["d2h_pinned"] = links["h2d_pinned"] = LinkModel(*pcie)
    return HardwareProfile("hand", "spec-derived", device, {}, ops, links, interference)


def cpu(nodes=1, ranks_per_node=2, nic=None):
    """CPU ranks over gloo: one node (loopback) or ``nodes`` nodes joined by ``nic`` = (lat, B/s)."""
    net = Network(nic[1], nic[0]) if nic else None
    if nodes == 1:
        return ClusterSpec("cpu", 1, 1, "cpu", Link("loopback", 1e9, 0.0), ranks_per_device=ranks_per_node)
    return ClusterSpec("cpus", nodes, 1, "cpu", Link("loopback", 1e9, 0.0), net, ranks_per_device=ranks_per_node)


def traffic(nbytes, layer=0, direction="fwd"):
    B = np.asarray(nbytes, dtype=float)
    rows = {32: (B > 0).sum(1)}
    return Traffic(layer, direction, 4, rows, {32: (B > 0).sum(0)}, B)


@pytest.fixture
def kit():
    """The helpers above, as one namespace (tests/simulator has no package to import from)."""
    return SimpleNamespace(profile=profile, cpu=cpu, traffic=traffic)
