"""The simulator's flow paths are the analytic model's: same loads per instance, same latencies."""

import dataclasses

import numpy as np
import pytest

from adaqp.cluster import ClusterSpec, Link, Network
from adaqp.costmodel.network import exchange_loads
from adaqp.simulator.paths import network_layout

PCIE = Link("pcie", 16e9, 5e-6)


def _clusters():
    net = Network(12.5e9, 20e-6)
    return {
        "gloo-cpu one node": ClusterSpec("c1", 1, 1, "cpu", Link("loopback", 1e9, 1e-5), ranks_per_device=4),
        "gloo-cpu two nodes": ClusterSpec("c2", 2, 1, "cpu", Link("loopback", 1e9, 1e-5), net, ranks_per_device=2),
        "gloo-cpu emulated hosts": ClusterSpec.emulated(4, 12.5e6),
        "nccl gdr off": ClusterSpec("n1", 2, 2, "v100", PCIE, Network(1.25e9, 3e-5, gdr=False)),
        "nccl gdr on": ClusterSpec("n2", 2, 2, "h100", Link("nvlink", 4.5e11, 3e-6), Network(25e9, 5e-6, gdr=True)),
        "gloo-staged shared gpu": ClusterSpec("s1", 1, 1, "h200", PCIE, ranks_per_device=4, transport="gloo-staged"),
        "gloo-staged two nodes": ClusterSpec("s2", 2, 2, "v100", PCIE, net, ranks_per_device=2,
                                             transport="gloo-staged"),
    }


@pytest.mark.parametrize("name", list(_clusters()))
def test_paths_sum_to_the_analytic_loads_and_latencies(name, kit):
    cluster = _clusters()[name]
    prof = kit.profile(net=(1e-4, 1e9), device="cpu" if cluster.device == "cpu" else "cuda", pcie=(7e-6, 2e10))
    P = cluster.num_ranks
    B = np.random.default_rng(1).integers(0, 1000, (P, P)).astype(float)
    B[0, 1] = 0.0  # a pair with nothing to send
    np.fill_diagonal(B, 0.0)
    layout = network_layout(cluster, prof)
    loads, lat = exchange_loads(cluster, prof, B)
    mine = layout.loads(B)
    kinds = np.array(layout.kinds)
    for kind, (per_instance, res) in loads.items():
        assert np.allclose(mine[kinds == kind], per_instance, rtol=1e-12, atol=0), kind
        assert np.all(layout.bw_Bps[kinds == kind] == res.bw_Bps), kind
        assert np.all(layout.burst_bytes[kinds == kind] == res.burst_bytes), kind
    assert set(loads) == set(kinds[mine > 0])  # no kind the analytic model does not know
    assert set(kinds[layout.burst_bytes > 0]) <= {"nic_out", "nic_in"}  # only shaped NICs have buckets
    assert np.allclose(np.where(B > 0, layout.latency_s, 0.0), lat, rtol=1e-12, atol=0)


def test_gdr_off_routes_cross_node_flows_through_both_copy_engines(kit):
    off = _clusters()["nccl gdr off"]
    layout = network_layout(off, kit.profile(device="cuda", pcie=(7e-6, 2e10)))
    names = lambda s, r: [layout.names[h] for h in layout.hops[s, r] if h != layout.pad]  # noqa: E731
    assert names(0, 2) == ["d2h[0]", "nic_out[0]", "nic_in[1]", "h2d[2]"]
    assert names(0, 1) == ["intra_out[0]", "intra_in[1]"]


def test_a_measured_staged_exchange_replaces_the_composed_path(kit):
    """With ``staged@k`` in the profile a gloo-staged exchange is that link alone: no PCIe hops
    (the copies are inside the measurement), its latency once, bytes over its bandwidth."""
    from dataclasses import replace

    from adaqp.costmodel.network import exchange_s
    from adaqp.costmodel.profile import LinkModel

    cluster = _clusters()["gloo-staged shared gpu"]
    prof = kit.profile(net=(1e-4, 1e9), device="cuda", pcie=(7e-6, 2e10))
    staged = replace(prof, links={**prof.links, "staged@4": LinkModel(5e-4, 2.5e9)})
    B = np.full((4, 4), 1e6)
    np.fill_diagonal(B, 0.0)
    loads, lat = exchange_loads(cluster, staged, B)
    assert set(loads) == {"endpoint_tx", "endpoint_rx"}
    assert loads["endpoint_tx"][1].bw_Bps == 2.5e9 and float(lat.max()) == 5e-4
    assert exchange_s(cluster, staged, B) == (pytest.approx(5e-4 + 3e6 / 2.5e9, rel=1e-12), "endpoint_tx")
    layout = network_layout(cluster, staged)
    assert "d2h" not in layout.kinds and np.allclose(layout.loads(B)[np.array(layout.kinds) == "endpoint_tx"], 3e6)
    # for another rank count the measurement does not apply: the composed path, PCIe hops included
    loads2, _ = exchange_loads(replace(cluster, ranks_per_device=2, name="s2"), staged, B[:2, :2])
    assert {"d2h", "h2d"} <= set(loads2)


def test_a_nics_two_sides_pair_up_for_crowding():
    from adaqp.cluster import ClusterSpec
    from adaqp.costmodel.profile import load_profile
    from adaqp.simulator.paths import network_layout

    c = ClusterSpec.emulated(3, 12.5e6)
    plain = network_layout(c, load_profile(c.profile))
    assert (plain.partner == -1).all() and plain.crowd.tolist() == [1.0]
    c = dataclasses.replace(c, network=dataclasses.replace(c.network, bw_crowded={2: 10e6}))
    lay = network_layout(c, load_profile(c.profile))
    for i, name in enumerate(lay.names):
        other = lay.partner[i]
        if name.startswith("nic_"):  # nic_out[k] <-> nic_in[k]
            side, k = name.split("[")
            assert lay.names[other] == {"nic_out": "nic_in", "nic_in": "nic_out"}[side] + "[" + k
        else:
            assert other == -1
    assert lay.crowd.tolist() == pytest.approx([1.0, 1.0, 10e6 / 12.5e6])
