"""Compute streams, overlap, shared devices and the all-reduce barrier: exact event times."""

import numpy as np
import pytest

from adaqp.cluster import ClusterSpec, Link, Network
from adaqp.costmodel.network import allreduce_s
from adaqp.costmodel.program import AllReduce, Compute, Exchange
from adaqp.simulator import simulate_program

MB = 1e6


def _spans(result, rank, name):
    return [((e["start_ns"]) / 1e9, e["end_ns"] / 1e9, e["track"]) for e in result.events[rank] if e["name"] == name]


@pytest.mark.parametrize("hidden", [0.3, 2.5])
def test_overlap_hides_exactly_the_central_compute(kit, hidden):
    # 2 CPU ranks swap 1 MB at 1 MB/s (x = 1 s) while each runs `hidden` seconds of central
    prof = kit.profile(net=(0.0, 1 * MB))
    swap = kit.traffic([[0, MB], [MB, 0]])
    prog = [Exchange(swap, np.array([hidden, hidden])), Compute("marginal", np.array([0.5, 0.5]))]
    r = simulate_program(prog, kit.cpu(), prof)
    assert r.epoch_time_s == pytest.approx(max(1.0, hidden) + 0.5, rel=1e-12)
    assert _spans(r, 0, "central") == [(0.0, pytest.approx(hidden), "main")]
    assert _spans(r, 0, "communicate") == [(0.0, pytest.approx(1.0), "comm")]
    # what the central compute did not cover is exposed communication, as the analytic model counts it
    assert r.exposed_comm_s == pytest.approx(max(1.0 - hidden, 0.0), abs=1e-12)
    assert r.phases_s["central"] == pytest.approx(hidden)


def test_two_ranks_on_one_gpu_share_it(kit):
    # 1 s and 2 s of work: both run at half speed until rank 0 is done at 2 s, rank 1's last
    # second then runs alone: 3 s in all, the serialised total the analytic model adds up
    gpu = ClusterSpec("g", 1, 1, "h200", Link("pcie", 5e10, 0.0), ranks_per_device=2, transport="gloo-staged")
    prof = kit.profile(device="cuda", pcie=(0.0, 1e12))
    r = simulate_program([Compute("dense", np.array([1.0, 2.0]))], gpu, prof)
    assert r.epoch_time_s == pytest.approx(3.0, rel=1e-12)
    assert _spans(r, 0, "dense") == [(0.0, pytest.approx(2.0), "main")]
    assert _spans(r, 1, "dense") == [(0.0, pytest.approx(3.0), "main")]
    util = {u["resource"]: u["utilisation"] for u in r.utilisation}
    assert util["compute[device 0]"] == pytest.approx(1.0)


def test_hidden_compute_shares_the_gpu_with_a_neighbours_kernel(kit):
    # rank 0's 1 s kernel ends at 2 s (half speed beside rank 1's); its 0.5 s of hidden central
    # compute then shares the GPU with the rest of rank 1's kernel: both at half speed until 3 s;
    # rank 1's last 0.5 s alone ends at 3.5 s, its own hidden 0.5 s at 4 s
    gpu = ClusterSpec("g", 1, 1, "h200", Link("pcie", 5e10, 0.0), ranks_per_device=2, transport="gloo-staged")
    prof = kit.profile(net=(0.0, 1e12), device="cuda", pcie=(0.0, 1e12))
    prog = [Compute("dense", np.array([1.0, 2.0])), Exchange(kit.traffic([[0, 1], [1, 0]]), np.array([0.5, 0.5]))]
    r = simulate_program(prog, gpu, prof)
    assert _spans(r, 0, "central") == [(pytest.approx(2.0), pytest.approx(3.0), "main")]
    assert _spans(r, 1, "dense") == [(0.0, pytest.approx(3.5), "main")]
    assert _spans(r, 1, "central") == [(pytest.approx(3.5), pytest.approx(4.0), "main")]
    assert r.epoch_time_s == pytest.approx(4.0, rel=1e-12)


def test_gdr_off_adds_the_two_pcie_hops(kit):
    # 2 nodes x 1 GPU; 10 MB from rank 0 to 1. PCIe (5 GB/s) is slower than the NIC (10 GB/s)
    prof = kit.profile(device="cuda", pcie=(7e-6, 5e9))
    prog = [Exchange(kit.traffic([[0, 10 * MB], [0, 0]]), None)]
    times = {}
    for gdr in (True, False):
        c = ClusterSpec("n", 2, 1, "h100", Link("nvlink", 4e11, 3e-6), Network(1e10, 2e-5, gdr=gdr))
        times[gdr] = simulate_program(prog, c, prof).epoch_time_s
    assert times[True] == pytest.approx(2e-5 + 10 * MB / 1e10, rel=1e-12)
    assert times[False] == pytest.approx(7e-6 + 2e-5 + 7e-6 + 10 * MB / 5e9, rel=1e-12)


def test_allreduce_is_a_barrier_then_one_global_span(kit):
    prof = kit.profile()
    c = kit.cpu(ranks_per_node=3)
    r = simulate_program([Compute("dense", np.array([1.0, 3.0, 2.0])), AllReduce(4e6),
                          Compute("optimizer", np.array([0.1, 0.1, 0.1]))], c, prof)
    ar = allreduce_s(c, prof, 4e6)
    assert r.epoch_time_s == pytest.approx(3.0 + ar + 0.1, rel=1e-12)
    for rank in range(3):
        assert _spans(r, rank, "allreduce") == [(pytest.approx(3.0), pytest.approx(3.0 + ar), "main")]
    assert r.allreduce_s == pytest.approx(ar)


def test_a_send_completes_when_the_receiver_holds_the_data(kit):
    # rank 0 only sends: it goes on when its 1 MB arrived (1 s + 0.25 s latency), not when it left
    prof = kit.profile(net=(0.25, 1 * MB))
    r = simulate_program([Exchange(kit.traffic([[0, MB], [0, 0]]), None)], kit.cpu(), prof)
    assert r.rank_end_s.tolist() == [pytest.approx(1.25), pytest.approx(1.25)]
