"""ClusterSpec: unit parsing, validation errors that name their field, round trips, rank mapping."""

import dataclasses

import numpy as np
import pytest
import yaml

from adaqp.cluster import (
    ClusterSpec,
    Link,
    Network,
    parse_bandwidth_Bps,
    parse_latency_s,
)
from adaqp.errors import AdaqpInputError

TWO_NODES = {
    "name": "two-servers",
    "nodes": 2,
    "devices_per_node": 4,
    "device": "h100",
    "intra_link": {"kind": "pcie", "pcie_gen": 4, "lanes": 16},
    "network": {"bw": "25gbit", "latency": "5us", "gdr": True},
}


@pytest.mark.parametrize("text, bps", [
    ("25gbit", 25e9 / 8), ("25Gbps", 25e9 / 8), ("25 Gb/s", 25e9 / 8), ("100mbit", 100e6 / 8),
    ("200Mbit/s", 200e6 / 8), ("1Tbit", 1e12 / 8), ("16GB/s", 16e9), ("55 GB/s", 55e9),
    ("12.5GBps", 12.5e9), ("1GiB/s", 2.0**30), ("8 bytes/s", 8.0), ("1e9", 1e9), ("2.5e3 kB/s", 2.5e6),
    (1000, 1000.0), (2.5e9, 2.5e9),
])
def test_parse_bandwidth(text, bps):
    assert parse_bandwidth_Bps(text) == pytest.approx(bps)


@pytest.mark.parametrize("text", ["25 gigs", "16G", "25gb", "10 BPS", "fast", "", "1 bit / s", True, None, "nan"])
def test_parse_bandwidth_refuses(text):
    with pytest.raises(AdaqpInputError, match=r"network.bw: cannot parse .* as a bandwidth \(e.g. 25gbit, 16GB/s\)"):
        parse_bandwidth_Bps(text, "network.bw")


def test_parse_bandwidth_message_and_sign():
    with pytest.raises(AdaqpInputError) as e:
        parse_bandwidth_Bps("25 gigs", "network.bw")
    assert str(e.value) == "network.bw: cannot parse '25 gigs' as a bandwidth (e.g. 25gbit, 16GB/s)"
    for bad in (0, "-1GB/s"):
        with pytest.raises(AdaqpInputError, match="must be positive"):
            parse_bandwidth_Bps(bad)


@pytest.mark.parametrize("text, s", [
    ("5us", 5e-6), ("5 µs", 5e-6), ("0.5ms", 5e-4), ("100ns", 1e-7), ("2e-6", 2e-6), ("1s", 1.0),
    (0, 0.0), (3e-6, 3e-6),
])
def test_parse_latency(text, s):
    assert parse_latency_s(text) == pytest.approx(s)


@pytest.mark.parametrize("text", ["5 minutes", "fast", "5uss", False, "-1us"])
def test_parse_latency_refuses(text):
    with pytest.raises(AdaqpInputError, match="intra_link.latency: "):
        parse_latency_s(text, "intra_link.latency")


def test_from_dict_with_units_and_defaults():
    c = ClusterSpec.from_dict(TWO_NODES)
    assert c.intra_link.bw_Bps == pytest.approx(16 * 1.969e9)  # derived from gen 4 x16
    assert c.network.bw_Bps == pytest.approx(25e9 / 8) and c.network.latency_s == pytest.approx(5e-6)
    assert (c.ranks_per_device, c.profile, c.transport) == (1, "h100", "nccl")
    assert c.network.oversubscription == 1.0 and c.intra_link.latency_s > 0


def test_dict_and_yaml_round_trip(tmp_path):
    c = ClusterSpec.from_dict(TWO_NODES)
    assert ClusterSpec.from_dict(c.to_dict()) == c
    p = c.to_yaml(tmp_path / "sub" / "cluster.yaml")
    assert ClusterSpec.from_yaml(p) == c
    assert [f.name for f in p.parent.iterdir()] == ["cluster.yaml"]
    np_ints = ClusterSpec("n", np.int64(2), np.int32(1), "h100", Link("pcie", pcie_gen=np.int64(5), lanes=np.int8(16)),
                          Network("100gbit"))
    assert ClusterSpec.from_yaml(np_ints.to_yaml(tmp_path / "n.yaml")) == np_ints  # stored as plain ints
    local = ClusterSpec.local_cpu(4)
    assert ClusterSpec.from_yaml(local.to_yaml(tmp_path / "l.yaml")) == local


def test_crowded_nic_share_by_flows_each_way(tmp_path):
    net = Network(10e6, bw_crowded={3: 7e6, 2: "64mbit"})  # 8 MB/s at 2 flows each way, 7 at 3
    assert list(net.bw_crowded) == [2, 3] and net.bw_crowded[2] == pytest.approx(8e6)
    # the smaller of the two counts; below 2 the full rate; past the table its last share
    got = net.crowd_factor([0, 5, 1, 2, 3, 2, 9], [7, 0, 4, 2, 3, 6, 9])
    assert got.tolist() == pytest.approx([1.0, 1.0, 1.0, 0.8, 0.7, 0.8, 0.7])
    # a table measured only at 3 flows: 2 lies between one flow (1.0) and it
    assert Network(10e6, bw_crowded={3: 6e6}).crowd_factor(2, 2) == pytest.approx(0.8)
    assert Network(10e6).crowd_factor(4, 4) == 1.0
    c = ClusterSpec.emulated(3, 12.5e6)
    c = dataclasses.replace(c, network=dataclasses.replace(c.network, bw_crowded={"2": 10e6}))
    assert c.network.bw_crowded == {2: 10e6}  # JSON's string keys
    assert ClusterSpec.from_yaml(c.to_yaml(tmp_path / "c.yaml")) == c


def test_yaml_with_units_and_name_from_file(tmp_path):
    p = tmp_path / "lab.yaml"
    p.write_text("nodes: 1\ndevices_per_node: 1\nranks_per_device: 4\ndevice: H200\n"
                 "intra_link: {kind: loopback, bw: 0.9GB/s, latency: 30us}\n")
    c = ClusterSpec.from_yaml(p)
    assert (c.name, c.device, c.transport, c.network) == ("lab", "h200", "gloo-staged", None)
    assert c.intra_link.bw_Bps == pytest.approx(0.9e9)


def _with(path: str, value):
    """TWO_NODES with the field at dotted ``path`` set to ``value`` (or removed for ...)."""
    d = yaml.safe_load(yaml.safe_dump(TWO_NODES))
    *head, last = path.split(".")
    node = d
    for k in head:
        node = node[k]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return d


@pytest.mark.parametrize("path, value, match", [
    ("network.gdr", "maybe", "cluster.yaml: network.gdr must be true or false"),
    ("network.bw", "25 gigs", "cluster.yaml: network.bw: cannot parse '25 gigs' as a bandwidth"),
    ("network.latency", "soon", "network.latency: cannot parse 'soon' as a latency"),
    ("network.oversubscription", 0.5, "network.oversubscription must be a number >= 1"),
    ("network.burst_bytes", -1, "network.burst_bytes must be a number of bytes >= 0"),
    ("network.burst_bytes", "lots", "network.burst_bytes must be a number of bytes >= 0"),
    ("network.burst_bytes", 4096, "network.burst_bytes: a token bucket is modelled for the gloo transports"),
    ("network.bw_crowded", {1: "20gbit"}, "network.bw_crowded: flow counts must be integers >= 2"),
    ("network.bw_crowded", {2: "fast"}, r"network.bw_crowded\[2\]: cannot parse 'fast' as a bandwidth"),
    ("network.bw_crowded", [2, 3], "network.bw_crowded must map a flow count to a bandwidth"),
    ("network.speed", 1, "unknown field network.speed"),
    ("network.bw", ..., "missing field network.bw"),
    ("network", ..., "network is required when nodes > 1"),
    ("nodes", 0, "nodes must be a positive integer"),
    ("devices_per_node", "4", "devices_per_node must be a positive integer"),
    ("ranks_per_device", 2, "network.gdr: GPUDirect RDMA needs transport nccl, not gloo-staged"),
    ("device", "", "device must be a non-empty string"),
    ("device", ..., "missing field device"),
    ("name", 7, "name must be a non-empty string"),
    ("profile", ["x"], "profile must be a non-empty string"),
    ("transport", "mpi", "transport must be one of nccl, gloo-staged, gloo-cpu"),
    ("transport", "gloo-staged", "network.gdr: GPUDirect RDMA needs transport nccl"),
    ("transport", "gloo-cpu", "transport gloo-cpu does not fit device 'h100'"),
    ("intra_link.kind", "infiniband", "intra_link.kind must be one of pcie, nvlink, loopback"),
    ("intra_link.lanes", 3, "intra_link.lanes must be one of 1, 2, 4, 8, 16"),
    ("intra_link.pcie_gen", ..., "intra_link.bw is required"),
    ("intra_link.bw", "fast", "intra_link.bw: cannot parse"),
    ("intra_link", "pcie", "intra_link must be a mapping"),
    ("gpus", 8, "unknown field gpus"),
])
def test_validation_errors_name_their_field(path, value, match):
    with pytest.raises(AdaqpInputError, match=match):
        ClusterSpec.from_dict(_with(path, value), source="cluster.yaml")


def test_cross_field_rules():
    loop = Link("loopback", 1e9)
    with pytest.raises(AdaqpInputError, match="intra_link.kind: CPU ranks on one node talk over loopback"):
        ClusterSpec("c", 1, 2, "cpu", Link("pcie", 1e9))
    with pytest.raises(AdaqpInputError, match="intra_link.pcie_gen is only for kind pcie"):
        Link("nvlink", 1e11, pcie_gen=4)
    with pytest.raises(AdaqpInputError, match="transport nccl does not fit device 'cpu'"):
        ClusterSpec("c", 1, 2, "cpu", loop, transport="nccl")
    assert ClusterSpec("c", 1, 1, "h200", loop, ranks_per_device=4).transport == "gloo-staged"
    with pytest.raises(AdaqpInputError, match="ranks_per_device: NCCL refuses two ranks on one GPU"):
        ClusterSpec("c", 1, 1, "h200", loop, ranks_per_device=2, transport="nccl")


def test_yaml_file_errors(tmp_path):
    with pytest.raises(AdaqpInputError, match="file not found"):
        ClusterSpec.from_yaml(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: [1,\n")
    with pytest.raises(AdaqpInputError, match="bad.yaml: not valid YAML"):
        ClusterSpec.from_yaml(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(AdaqpInputError, match="bad.yaml: the spec must be a mapping"):
        ClusterSpec.from_yaml(bad)


def test_rank_mapping():
    c = ClusterSpec("c", 2, 2, "h100", Link("nvlink", "300GB/s"), Network("100gbit"),
                    ranks_per_device=2, transport="gloo-staged")
    assert (c.num_ranks, c.world_size, c.num_devices, c.ranks_per_node) == (8, 8, 4, 4)
    assert [c.rank_to_node(r) for r in range(8)] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [c.rank_to_device(r) for r in range(8)] == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(AdaqpInputError, match="rank 8 out of range"):
        c.rank_to_node(8)


def test_local_cpu():
    c = ClusterSpec.local_cpu(4)
    assert (c.nodes, c.ranks_per_device, c.device, c.transport, c.network) == (1, 4, "cpu", "gloo-cpu", None)
    assert [c.rank_to_device(r) for r in range(4)] == [0, 0, 0, 0]
    s = ClusterSpec.local_cpu(3, "200mbit")
    assert (s.nodes, s.num_ranks, s.network.bw_Bps) == (3, 3, pytest.approx(25e6))
    assert [s.rank_to_node(r) for r in range(3)] == [0, 1, 2]
    with pytest.raises(AdaqpInputError, match="num_ranks must be a positive integer"):
        ClusterSpec.local_cpu(0)


def test_with_ranks_resizes_along_the_natural_axis():
    from adaqp.cluster import ClusterSpec, Link, Network

    shared = ClusterSpec("s", 1, 1, "cpu", Link("loopback", 1e9), ranks_per_device=2)
    assert shared.with_ranks(6).ranks_per_device == 6
    node = ClusterSpec("n", 1, 4, "h100", Link("nvlink", 3e11))
    assert node.with_ranks(8).devices_per_node == 8
    multi = ClusterSpec("m", 2, 4, "a100", Link("nvlink", 3e11), Network(1.25e10))
    assert multi.with_ranks(24).nodes == 6 and multi.with_ranks(24).num_ranks == 24
    assert multi.with_ranks(2).nodes == 2 and multi.with_ranks(2).devices_per_node == 1
    with pytest.raises(AdaqpInputError, match="neither a multiple"):
        multi.with_ranks(5)
