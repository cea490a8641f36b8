"""Ranks sharing a CPU's cores: processor sharing, played, with exact finish times."""

import dataclasses

import numpy as np
import pytest

from adaqp.cluster import ClusterSpec
from adaqp.costmodel.durations import compute_scale, corun_slowdown
from adaqp.costmodel.program import Compute, Exchange
from adaqp.simulator import simulate_program


def _prof(kit, cores, threads=1, corun=1.0, net=(0.0, 1e6)):
    p = kit.profile(net=net)
    return dataclasses.replace(p, meta={"cores": cores, "compute_threads": threads}, corun=corun)


def _end(r, rank, name):
    return [e["end_ns"] / 1e9 for e in r.events[rank] if e["name"] == name]


def test_two_ranks_on_one_core_finish_at_known_times(kit):
    # 1 s and 2 s of work on one core: both at half speed until 2 s (rank 0 done), then rank 1's
    # remaining 1 s alone: 3 s
    r = simulate_program([Compute("dense", np.array([1.0, 2.0]))], kit.cpu(), _prof(kit, cores=1))
    assert _end(r, 0, "dense") == [pytest.approx(2.0, rel=1e-12)]
    assert _end(r, 1, "dense") == [pytest.approx(3.0, rel=1e-12)]


def test_ranks_within_the_cores_do_not_slow_each_other(kit):
    r = simulate_program([Compute("dense", np.array([1.0, 2.0]))], kit.cpu(), _prof(kit, cores=2))
    assert r.rank_end_s.tolist() == [pytest.approx(1.0), pytest.approx(2.0)]


def test_corun_factor_applies_only_while_both_compute(kit):
    # corun 1.5 on two cores: both at 1/1.5 until rank 0's 1 s is done at 1.5 s; rank 1 then has
    # 2 - 1 = 1 s left alone: 2.5 s (a static factor would say 3 s)
    r = simulate_program([Compute("dense", np.array([1.0, 2.0]))], kit.cpu(),
                         _prof(kit, cores=2, corun=1.5))
    assert r.rank_end_s.tolist() == [pytest.approx(1.5, rel=1e-12), pytest.approx(2.5, rel=1e-12)]


def test_a_rank_blocked_on_a_message_gives_its_share_away(kit):
    # 4 ranks on 2 cores: ranks 0, 1 wait 1 s for a 1 MB message (1 MB/s); ranks 2, 3 compute 1 s
    # meanwhile, alone on the two cores: full speed, done at 1 s. Then ranks 0, 1 compute 1 s,
    # again two ranks on two cores: done at 2 s. A static 4-ranks-on-2-cores scale would double
    # every compute step.
    c = kit.cpu(ranks_per_node=4)
    B = np.zeros((4, 4))
    B[0, 1] = B[1, 0] = 1e6
    prog = [Exchange(kit.traffic(B), None), Compute("dense", np.array([1.0, 1.0, 0.0, 0.0]))]
    pre = [Compute("dense", np.array([0.0, 0.0, 1.0, 1.0]))]
    r = simulate_program(pre + prog, c, _prof(kit, cores=2))
    assert r.rank_end_s.tolist() == [pytest.approx(2.0), pytest.approx(2.0), pytest.approx(1.0), pytest.approx(1.0)]
    assert compute_scale(c, _prof(kit, cores=2)) == 2.0  # what the analytic model applies throughout


def test_emulated_hosts_share_one_machine(kit):
    # four emulated hosts on a 2-core machine: one shared resource; 4 x 1 s of work, 2 at a time
    c = dataclasses.replace(ClusterSpec.emulated(4, 1e8), profile="hand")
    r = simulate_program([Compute("dense", np.ones(4))], c, _prof(kit, cores=2))
    assert r.rank_end_s.tolist() == [pytest.approx(2.0)] * 4
    assert [u["resource"] for u in r.utilisation if u["kind"] == "compute"] == ["compute[host cpu]"]


@pytest.mark.parametrize("running, cores, threads, corun, expect", [
    (1, 2, 1, 1.8, 1.0), (2, 2, 1, 1.8, 1.8), (4, 2, 1, 1.8, 3.6), (3, 2, 1, 1.0, 1.5), (2, 4, 2, 1.0, 1.0),
])
def test_corun_slowdown(kit, running, cores, threads, corun, expect):
    assert corun_slowdown(kit.cpu(), _prof(kit, cores, threads, corun), running) == pytest.approx(expect)


def test_measured_corun_table_wins_and_extends_by_core_share(kit):
    p = dataclasses.replace(_prof(kit, cores=2), corun_by_ranks={"2": 1.7, "3": 2.4})
    c = kit.cpu()
    assert [corun_slowdown(c, p, n) for n in (1, 2, 3)] == [1.0, 1.7, 2.4]
    assert corun_slowdown(c, p, 6) == pytest.approx(2.4 * 3 / 1.5)


def test_interference_keeps_its_share_of_the_measured_rate(kit):
    from adaqp.costmodel.durations import overlap_interference

    p = dataclasses.replace(_prof(kit, cores=2, net=(0.0, 1e9)), interference=3.0)
    assert overlap_interference(kit.cpu(), p) == 3.0  # the transport it was measured on
    slow = dataclasses.replace(ClusterSpec.emulated(2, 1e8), profile="hand")  # 100 MB/s per host
    assert overlap_interference(slow, p) == pytest.approx(1.0 + 2.0 * 0.1)
