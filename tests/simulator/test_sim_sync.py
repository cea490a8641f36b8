"""Ranks sharing a CPU pay the profile's measured ``sync_s`` per exchange: past the cores a floor
(hidden by a longer transfer), with a core per rank the least a rank waits for a later peer
(the delay, then the transfer); the all-reduce pays it once. Exact times, tiny cases."""

import dataclasses

import numpy as np
import pytest

from adaqp.costmodel.network import exchange_s, host_sync_s
from adaqp.costmodel.program import AllReduce, Exchange
from adaqp.simulator import simulate_program


def _prof(kit, sync):
    return dataclasses.replace(kit.profile(net=(0.0, 1e6)), sync_s={"2": sync})


@pytest.mark.parametrize("nbytes, sync, expect", [
    (1e3, 0.5, 0.5),   # 1 ms of transfer: the floor decides
    (2e6, 0.5, 2.0),   # 2 s of transfer hides the 0.5 s floor
    (1e3, 0.0, 1e-3),  # no table: bytes / bandwidth
])
def test_exchange_lasts_max_of_transfer_and_floor(kit, nbytes, sync, expect):
    prof, cluster = _prof(kit, sync), kit.cpu()
    swap = kit.traffic([[0, nbytes], [nbytes, 0]])
    r = simulate_program([Exchange(swap, None)], cluster, prof)
    assert r.epoch_time_s == pytest.approx(expect, rel=1e-9)
    assert exchange_s(cluster, prof, swap.nbytes)[0] == pytest.approx(expect, rel=1e-9)  # analytic agrees


def test_floor_counts_from_each_flows_post(kit):
    # rank 1 posts 0.3 s late (after its compute): its flow ends 0.5 s after that, at 0.8 s
    from adaqp.costmodel.program import Compute

    prof = _prof(kit, 0.5)
    prog = [Compute("dense", np.array([0.0, 0.3])), Exchange(kit.traffic([[0, 1e3], [1e3, 0]]), None)]
    assert simulate_program(prog, kit.cpu(), prof).epoch_time_s == pytest.approx(0.8, rel=1e-9)


def test_allreduce_pays_its_own_measured_delay_once(kit):
    prof, cluster = dataclasses.replace(_prof(kit, 0.5), allreduce_sync_s={"2": 0.25}), kit.cpu()
    base = simulate_program([AllReduce(4e3)], cluster, kit.profile(net=(0.0, 1e6))).epoch_time_s
    assert simulate_program([AllReduce(4e3)], cluster, prof).epoch_time_s == pytest.approx(base + 0.25, rel=1e-9)


def test_nccl_ranks_and_single_ranks_have_no_floor(kit):
    prof = _prof(kit, 0.5)
    assert host_sync_s(kit.cpu(ranks_per_node=1), prof) == 0.0
    one_each = dataclasses.replace(kit.cpu(ranks_per_node=1), device="cuda", transport="nccl", profile="cuda")
    assert host_sync_s(dataclasses.replace(one_each, devices_per_node=2), dataclasses.replace(prof, device="cuda")) == 0.0


def test_ranks_sharing_a_gpu_pay_the_staged_floor(kit):
    # gloo-staged: a stream sync and a thread hand-off per exchange, measured per k by runtime.profiling.gpu
    prof = dataclasses.replace(_prof(kit, 0.5), device="cuda")
    shared = dataclasses.replace(kit.cpu(), device="cuda", transport="gloo-staged", profile="cuda")
    assert host_sync_s(shared, prof) == 0.5
    assert host_sync_s(shared, dataclasses.replace(prof, sync_s={})) == 0.0  # spec-derived: no table


# ---- the floor by the compute since the rank's last synchronising step (sync_by_gap) ----------

def _gap_prof(kit):
    # 0.1 s after no compute, 0.5 s after 2 s of it; the plain table (0.9 s) is not used for 2 ranks
    return dataclasses.replace(_prof(kit, 0.9), sync_by_gap={"exchange": {"2": [[0.0, 0.1], [2.0, 0.5]]},
                                                            "allreduce": {"2": [[1.0, 0.2]]}})


@pytest.mark.parametrize("gap, floor", [(0.0, 0.1), (1.0, 0.3), (2.0, 0.5), (5.0, 0.5)])
def test_floor_grows_with_the_compute_before_the_exchange(kit, gap, floor):
    from adaqp.costmodel.program import Compute

    prof = _gap_prof(kit)
    prog = [Compute("dense", np.array([gap, gap])), Exchange(kit.traffic([[0, 1e3], [1e3, 0]]), None)]
    assert simulate_program(prog, kit.cpu(), prof).epoch_time_s == pytest.approx(gap + floor, rel=1e-9)
    assert host_sync_s(kit.cpu(), prof, gap_s=gap) == pytest.approx(floor, rel=1e-12)


def test_the_gap_counts_from_the_ranks_last_exchange(kit):
    # 1 s of compute, an exchange (floor 0.3 s: ends at 1.3 s), 0.5 s more (gap 0.5: floor 0.2 s)
    from adaqp.costmodel.program import Compute

    swap = kit.traffic([[0, 1e3], [1e3, 0]])
    prog = [Compute("dense", np.array([1.0, 1.0])), Exchange(swap, None),
            Compute("dense", np.array([0.5, 0.5])), Exchange(swap, None)]
    assert simulate_program(prog, kit.cpu(), _gap_prof(kit)).epoch_time_s == pytest.approx(2.0, rel=1e-9)


def test_the_allreduce_delay_follows_its_own_table(kit):
    from adaqp.costmodel.program import Compute

    prof, cluster = _gap_prof(kit), kit.cpu()
    plain = dataclasses.replace(prof, sync_by_gap={}, allreduce_sync_s={})
    prog = [Compute("dense", np.array([0.5, 0.5])), AllReduce(4e3)]
    base = simulate_program(prog, cluster, plain).epoch_time_s
    # one measured gap: its figure at every gap
    assert simulate_program(prog, cluster, prof).epoch_time_s == pytest.approx(base + 0.2, rel=1e-9)


# ---- a core per rank: the peer a rank waits for is late by at least the delay -----------------

def _cores(prof, cores, threads=1):
    return dataclasses.replace(prof, meta={"cores": cores, "compute_threads": threads})


@pytest.mark.parametrize("cores, threads, expect", [
    (2, 1, False),    # two ranks of one thread on two cores: the last poster finds the data sent
    (1, 1, True),     # two ranks time-sharing one core: every rank pays
    (2, 2, True),     # two threads each on two cores: past the cores
    (None, 1, True),  # a profile that states no cores: as past the cores
])
def test_the_delay_is_a_floor_past_the_cores(kit, cores, threads, expect):
    from adaqp.costmodel.network import sync_is_floor

    prof = _cores(_prof(kit, 0.5), cores, threads)
    assert sync_is_floor(kit.cpu(), prof) is expect


def test_with_a_core_per_rank_a_late_peer_pays_what_the_delay_exceeds_its_lateness(kit):
    # rank 0 posts at 0, rank 1 at 0.3 s. Rank 0 waits for a peer late by at least the 0.5 s
    # delay: rank 1's kB leaves at 0.5 s and lands 1 ms later; rank 1 holds until its send lands,
    # then computes 0.6 s more: 1.101 s. Rank 0's kB left at once (rank 1 had not posted).
    from adaqp.costmodel.program import Compute

    swap = kit.traffic([[0, 1e3], [1e3, 0]])
    prog = [Compute("dense", np.array([0.0, 0.3])), Exchange(swap, None), Compute("dense", np.array([0.0, 0.6]))]
    r = simulate_program(prog, kit.cpu(), _cores(_prof(kit, 0.5), 2))
    assert r.epoch_time_s == pytest.approx(1.101, rel=1e-9)
    comm = {rank: [(e["start_ns"], e["end_ns"]) for e in ev if e["name"] == "communicate"] for rank, ev in enumerate(r.events)}
    assert comm == {0: [(0, 501_000_000)], 1: [(300_000_000, 501_000_000)]}
    path = [(seg.start_s, seg.end_s, seg.kind) for seg in r.critical_path]  # rank 1's own steps
    assert path == [(0.0, pytest.approx(0.3), "compute"), (pytest.approx(0.3), pytest.approx(0.501), "exchange"),
                    (pytest.approx(0.501), pytest.approx(1.101), "compute")]
    assert r.critical_path[1].where.endswith("after the host delay")
    # a peer later than the delay pays nothing more: rank 1 posts at 0.7 s, its kB lands at 0.701 s
    late = [Compute("dense", np.array([0.0, 0.7])), Exchange(swap, None), Compute("dense", np.array([0.0, 0.6]))]
    assert simulate_program(late, kit.cpu(), _cores(_prof(kit, 0.5), 2)).epoch_time_s == pytest.approx(1.301, rel=1e-9)
    # past the cores every flow takes the delay from its post, a floor: rank 1 goes on at 0.8 s
    shared = simulate_program(prog, kit.cpu(), _cores(_prof(kit, 0.5), 1))
    assert shared.epoch_time_s == pytest.approx(1.4, rel=1e-9)


@pytest.mark.parametrize("cores, nbytes, expect", [
    (2, 1e3, 0.501),  # a core per rank: the delay, then the transfer
    (2, 2e6, 2.5),
    (1, 1e3, 0.5),    # past the cores: a floor the transfer hides
    (1, 2e6, 2.0),
])
def test_ranks_posting_together_pay_the_delay_as_the_analytic_model_does(kit, cores, nbytes, expect):
    swap = kit.traffic([[0, nbytes], [nbytes, 0]])
    prof = _cores(_prof(kit, 0.5), cores)
    r = simulate_program([Exchange(swap, None)], kit.cpu(), prof)
    assert r.epoch_time_s == pytest.approx(expect, rel=1e-9)
    assert exchange_s(kit.cpu(), prof, swap.nbytes)[0] == pytest.approx(expect, rel=1e-9)


def test_a_waiting_rank_on_the_critical_path_owns_its_wait(kit):
    # rank 1 posts at 0.3 s; its kB into rank 0 (waiting from 0) leaves at 0.5 s and lands at
    # 0.501 s; rank 0 computes 0.6 s more: the path is rank 1's compute, the held flow, rank 0's compute
    from adaqp.costmodel.program import Compute

    swap = kit.traffic([[0, 1e3], [1e3, 0]])
    prog = [Compute("dense", np.array([0.0, 0.3])), Exchange(swap, None), Compute("dense", np.array([0.6, 0.0]))]
    r = simulate_program(prog, kit.cpu(), _cores(_prof(kit, 0.5), 2))
    assert r.epoch_time_s == pytest.approx(1.101, rel=1e-9)
    assert [(s.kind, s.start_s, s.end_s) for s in r.critical_path] == [
        ("compute", 0.0, pytest.approx(0.3)), ("exchange", pytest.approx(0.3), pytest.approx(0.501)),
        ("compute", pytest.approx(0.501), pytest.approx(1.101))]
    assert r.critical_path[1].where.endswith("after the host delay")
    assert r.phases_s["communicate"] == pytest.approx(0.201, rel=1e-9)
