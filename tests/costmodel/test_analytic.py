"""The analytic model against figures computed by hand on tiny plans."""

import numpy as np
import pytest

from adaqp.cluster import ClusterSpec, Link, Network
from adaqp.costmodel.analytic import ModelShape, estimate
from adaqp.costmodel.network import exchange_s
from adaqp.costmodel.profile import OPS, HardwareProfile, LinkModel, OpModel
from adaqp.costmodel.workload import PlanStats

US = 1e-6


def _profile(spmm_per_nnz_w=1e-6, net=(1e-3, 1e6), interference=1.5, **coef):
    ops = {name: OpModel(feats, tuple([0.0] * len(feats))) for name, feats in OPS.items()}
    ops["spmm_fwd"] = OpModel(OPS["spmm_fwd"], (0.0, spmm_per_nnz_w, 0.0))
    for name, c in coef.items():
        ops[name] = OpModel(OPS[name], c)
    links = {"net": LinkModel(*net), "allreduce": LinkModel(0.0, 1e9)}
    # profiled with 1 thread per rank on 2 cores: 2 ranks sharing the CPU need no core scaling
    return HardwareProfile("hand", "spec-derived", "cpu", {"cores": 2, "compute_threads": 1}, ops, links,
                           interference)


def _stats():
    return PlanStats(inner=np.array([3, 2]), central=np.array([1, 1]), marginal=np.array([2, 1]),
                     halo=np.array([1, 2]), nnz_central=np.array([2, 1]), nnz_marginal=np.array([3, 2]),
                     nnz_marginal_halo=np.array([1, 2]), pair_rows=np.array([[0, 2], [1, 0]]))


def _local(P=2):
    return ClusterSpec("local", nodes=1, devices_per_node=1, device="cpu", ranks_per_device=P,
                       intra_link=Link("loopback", 1e9, 1e-6))


SHAPE = ModelShape("gcn", (4, 3), layer_norm=False, dropout=False)
ALLREDUCE = 4 * (4 * 3 + 3) / 1e9  # 15 parameters in fp32


def test_vanilla_one_layer_by_hand():
    # exchange: rank 0 sends 2 rows x 4 x 4 B = 32 B through its endpoint at 1 MB/s, plus 1 ms latency
    x = 1e-3 + 32 / 1e6
    # then central + marginal aggregation, GCN self loops included: rank 0 (2+1 + 3+2) x 4 x 1 us
    after = (3 + 5) * 4 * US
    e = estimate(_stats(), SHAPE, "vanilla", _local(), _profile())
    assert e.epoch_time_s == pytest.approx(x + after + ALLREDUCE, rel=1e-12)
    assert e.exchanges == [(0, "fwd", pytest.approx(x), "endpoint_tx")]
    assert e.exposed_comm_s == pytest.approx(x + ALLREDUCE)


def test_overlap_hides_the_central_aggregation_by_hand():
    x = 1e-3 + 32 / 1e6
    marginal = 5 * 4 * US  # rank 0 is slowest after the exchange
    e = estimate(_stats(), SHAPE, "overlap", _local(), _profile())
    assert e.epoch_time_s == pytest.approx(x + marginal + ALLREDUCE, rel=1e-12)
    # when compute dominates, the exchange hides instead; central is slowed by the interference
    slow = _profile(spmm_per_nnz_w=1e-3, net=(1e-6, 1e9))
    e = estimate(_stats(), SHAPE, "overlap", _local(), slow)
    central = 3 * 4 * 1e-3 * 1.5
    assert e.epoch_time_s == pytest.approx(central + 5 * 4 * 1e-3 + ALLREDUCE, rel=1e-12)
    assert e.exposed_comm_s == pytest.approx(ALLREDUCE)


def test_a_rank_with_no_bytes_in_flight_computes_beside_the_exchange_at_full_speed():
    from adaqp.costmodel.program import Exchange, build_program

    slow = _profile(spmm_per_nnz_w=1e-3, net=(1e-6, 1e9))
    # ranks 0 and 2 swap a row; rank 1 sends and receives nothing: its central aggregation
    # (2 rows, 3 edges and 2 self loops, width 4) is not slowed
    stats = PlanStats(inner=np.array([3, 2, 3]), central=np.array([1, 2, 1]), marginal=np.array([2, 0, 2]),
                      halo=np.array([1, 0, 1]), nnz_central=np.array([2, 3, 2]), nnz_marginal=np.array([3, 0, 3]),
                      nnz_marginal_halo=np.array([1, 0, 1]), pair_rows=np.array([[0, 0, 1], [0, 0, 0], [1, 0, 0]]))
    hidden = next(s for s in build_program(stats, SHAPE, "overlap", slow) if isinstance(s, Exchange)).hidden
    assert hidden.tolist() == pytest.approx([3 * 4 * 1e-3 * 1.5, 5 * 4 * 1e-3, 3 * 4 * 1e-3 * 1.5])
    # one rank alone: the epoch is the vanilla one
    one = PlanStats(inner=np.array([3]), central=np.array([3]), marginal=np.array([0]), halo=np.array([0]),
                    nnz_central=np.array([6]), nnz_marginal=np.array([0]), nnz_marginal_halo=np.array([0]),
                    pair_rows=np.zeros((1, 1), int))
    solo = _local(1)
    assert estimate(one, SHAPE, "overlap", solo, slow).epoch_time_s == pytest.approx(
        estimate(one, SHAPE, "vanilla", solo, slow).epoch_time_s, rel=1e-12)


def test_quantized_bytes_and_coding_costs_by_hand():
    # 8-bit rows of width 4: 4 B payload + 4 B header; quantize 1 us per row, dequantize 2 us per row
    p = _profile(quantize_b8=(0.0, 0.0, 1 * US), dequantize_b8=(0.0, 0.0, 2 * US))
    e = estimate(_stats(), SHAPE, "quant", _local(), p, bits=8)
    x = 1e-3 + 2 * 8 / 1e6
    pre = 2 * US  # rank 0 quantizes the 2 rows it sends
    post = max(1 * 2 * US + 8 * 4 * US, 2 * 2 * US + 5 * 4 * US)  # dequantize + aggregation
    assert e.epoch_time_s == pytest.approx(pre + x + post + ALLREDUCE, rel=1e-12)
    assert e.phases_s["quantize"] == pytest.approx(2 * US)


def test_backward_exchanges_only_above_the_input_layer():
    shape = ModelShape("sage", (4, 5, 3), layer_norm=True, dropout=True)
    e = estimate(_stats(), shape, "adaqp", _local(), _profile(), bits=4)
    assert [(a, b) for a, b, _, _ in e.exchanges] == [(0, "fwd"), (1, "fwd"), (1, "bwd")]
    assert shape.num_params == (2 * 4 * 5 + 5) + 2 * 5 + (2 * 5 * 3 + 3)


def test_nic_contention_across_nodes_by_hand():
    # 2 nodes x 2 CPU ranks; ranks 0 and 1 (node 0) each send 1 MB to rank 2 (node 1)
    cl = ClusterSpec("two", nodes=2, devices_per_node=1, device="cpu", ranks_per_device=2,
                     intra_link=Link("loopback", 1e9, 0.0), network=Network(1e8, 1e-4))
    p = _profile(net=(1e-5, 1e9))
    B = np.zeros((4, 4))
    B[0, 2] = B[1, 2] = 1e6
    t, where = exchange_s(cl, p, B)
    # both flows share node 0's NIC out and node 1's NIC in: 2 MB / 100 MB/s, plus the path latency
    assert where in ("nic_out", "nic_in")
    assert t == pytest.approx(2e6 / 1e8 + 1e-5 + 1e-4)
    B[1, 2] = 0
    assert exchange_s(cl, p, B)[0] == pytest.approx(1e6 / 1e8 + 1e-5 + 1e-4)


def test_a_shaped_nic_passes_its_bucket_first():
    # 2 nodes x 1 rank, NICs of 100 MB/s with 0.5 MB token buckets: 0.4 MB fits the bucket (the
    # endpoint's 1 GB/s is the bottleneck); 1.5 MB pays the rate for the 1 MB past it
    net = Network(1e8, 1e-4, burst_bytes=0.5e6)
    cl = ClusterSpec("two", nodes=2, devices_per_node=1, device="cpu", intra_link=Link("loopback", 1e9, 0.0),
                     network=net)
    p = _profile(net=(1e-5, 1e9))
    B = np.array([[0.0, 0.4e6], [0.0, 0.0]])
    assert exchange_s(cl, p, B) == (pytest.approx(0.4e6 / 1e9 + 1e-5 + 1e-4), "endpoint_tx")
    B[0, 1] = 1.5e6
    assert exchange_s(cl, p, B) == (pytest.approx(1e6 / 1e8 + 1e-5 + 1e-4), "nic_out")


def test_a_crowded_nic_counts_the_flows_each_way_by_hand():
    # 3 nodes x 1 rank, NICs of 100 MB/s that carry 80 MB/s with 2 flows out and 2 in
    net = Network(1e8, 1e-4, bw_crowded={2: 8e7})
    cl = ClusterSpec("three", nodes=3, devices_per_node=1, device="cpu", intra_link=Link("loopback", 1e9, 0.0),
                     network=net)
    p = _profile(net=(1e-5, 1e9))
    B = np.full((3, 3), 1e6)
    np.fill_diagonal(B, 0.0)  # all-to-all: every NIC 2 MB each way at 80 MB/s
    assert exchange_s(cl, p, B) == (pytest.approx(2e6 / 8e7 + 1e-5 + 1e-4), "nic_out")
    B[2, 0] = 0.0  # node 0 (1 in) and node 2 (1 out) at the full rate: node 1, still 2 and 2, is slowest
    assert exchange_s(cl, p, B)[0] == pytest.approx(2e6 / 8e7 + 1e-5 + 1e-4)
    B[1, 0] = 0.0  # node 1 down to 1 flow out: nobody crowded, 2 MB at 100 MB/s
    assert exchange_s(cl, p, B)[0] == pytest.approx(2e6 / 1e8 + 1e-5 + 1e-4)


def test_a_ring_allreduce_over_shaped_links_passes_the_bucket_first():
    from adaqp.costmodel.durations import ring_allreduce_s

    # 2 ranks: 2 steps of nbytes / 2 each, 1 MB in all over the ring
    assert ring_allreduce_s(1e6, 2, 1e8, 1e-4) == pytest.approx(2e-4 + 1e6 / 1e8)
    assert ring_allreduce_s(1e6, 2, 1e8, 1e-4, burst_bytes=0.25e6) == pytest.approx(2e-4 + 0.75e6 / 1e8)
    assert ring_allreduce_s(1e6, 2, 1e8, 1e-4, burst_bytes=2e6) == pytest.approx(2e-4)


def test_staged_gpu_path_adds_both_pcie_hops():
    cl = ClusterSpec("gpu", nodes=1, devices_per_node=1, device="h200", ranks_per_device=2,
                     intra_link=Link("pcie", 5e10, 2e-6), transport="gloo-staged")
    p = _profile(net=(1e-5, 1e9))
    B = np.array([[0, 1e6], [0, 0]])
    t, _ = exchange_s(cl, p, B)
    # the busiest resource is the slowest hop (Gloo endpoint at 1 GB/s); latencies add up
    assert t == pytest.approx(1e6 / 1e9 + 1e-5 + 2e-6 + 2e-6)


def test_mismatched_rank_count_is_refused():
    from adaqp.errors import AdaqpInputError

    with pytest.raises(AdaqpInputError, match="3 ranks but the plan has 2"):
        estimate(_stats(), SHAPE, "vanilla", _local(3), _profile())


def test_ranks_sharing_a_gpu_serialise_their_compute():
    gpu = ClusterSpec("g", nodes=1, devices_per_node=1, device="h200", ranks_per_device=2,
                      intra_link=Link("pcie", 5e10, 0.0), transport="gloo-staged")
    p = _profile(net=(0.0, 1e12))
    p = HardwareProfile(p.name, p.kind, "cuda", {}, p.ops,
                        {**p.links, "d2h_pinned": LinkModel(0.0, 1e12), "h2d_pinned": LinkModel(0.0, 1e12)}, 1.0)
    e = estimate(_stats(), SHAPE, "vanilla", gpu, p)
    # both ranks' aggregation runs on one device: (3 + 5) x 4 us + (2 + 3) x 4 us
    assert e.compute_time_s == pytest.approx((8 + 5) * 4 * US, rel=1e-6)


def test_cpu_ranks_sharing_cores_are_scaled_by_corun_and_core_share():
    from dataclasses import replace

    from adaqp.costmodel.durations import compute_scale

    p = replace(_profile(), corun=1.5)
    assert compute_scale(_local(2), p) == pytest.approx(1.5)  # 2 ranks x 1 thread on 2 cores
    assert compute_scale(_local(4), p) == pytest.approx(3.0)  # 4 ranks: half a core each
    e2 = estimate(_stats(), SHAPE, "vanilla", _local(), p)
    e1 = estimate(_stats(), SHAPE, "vanilla", _local(), _profile())
    assert e2.compute_time_s == pytest.approx(1.5 * e1.compute_time_s)
