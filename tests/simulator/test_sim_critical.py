"""The critical path names the steps and resources that set the end time."""

import numpy as np
import pytest

from adaqp.costmodel.program import Compute, Exchange
from adaqp.simulator import simulate_program

MB = 1e6


def test_the_path_runs_through_the_slow_rank_and_its_late_message(kit):
    # rank 2 computes 3 s, then its 1 MB to rank 0 takes 1 s; rank 0 then computes 0.5 s
    B = np.zeros((3, 3))
    B[2, 0] = B[1, 0] = MB
    prog = [Compute("dense", np.array([1.0, 1.0, 3.0])), Exchange(kit.traffic(B), None),
            Compute("marginal", np.array([0.5, 0.1, 0.1]))]
    r = simulate_program(prog, kit.cpu(ranks_per_node=3), kit.profile(net=(0.0, MB)))
    assert r.epoch_time_s == pytest.approx(4.5)
    kinds = [(s.kind, s.where, round(s.start_s, 9), round(s.end_s, 9)) for s in r.critical_path]
    assert kinds == [("compute", "compute[rank 2]", 0.0, 3.0),
                     ("exchange", "L0 fwd 2->0 via endpoint_tx[2]", 3.0, 4.0),
                     ("compute", "compute[rank 0]", 4.0, 4.5)]
    assert r.phases_s == pytest.approx({"dense": 3.0, "communicate": 1.0, "marginal": 0.5})
    # rank 1's message left at 1 s and arrived at 2 s, before rank 2 was ready: off the path
    assert r.exchanges[0]["start_s"] == 1.0 and r.exchanges[0]["end_s"] == pytest.approx(4.0)


def test_the_path_crosses_ranks_through_a_shared_device(kit):
    from adaqp.cluster import ClusterSpec, Link

    gpu = ClusterSpec("g", 1, 1, "h200", Link("pcie", 5e10, 0.0), ranks_per_device=2, transport="gloo-staged")
    prof = kit.profile(device="cuda", pcie=(0.0, 1e12))
    r = simulate_program([Compute("dense", np.array([1.0, 2.0])), Compute("marginal", np.array([0.5, 0.5]))],
                         gpu, prof)
    assert r.epoch_time_s == pytest.approx(4.0)
    # the kernels share the device: rank 1's dense runs 0 - 3.5 s (at half speed while rank 0's
    # kernels run beside it), its marginal 3.5 - 4 s; one line for the device
    assert [(s.kind, s.where) for s in r.critical_path] == [("compute", "compute[device 0]")]
    assert r.phases_s == pytest.approx({"dense": 3.5, "marginal": 0.5})
    assert r.critical_path_lines()[0].startswith("     0.000 -   4000.000 ms  compute")
