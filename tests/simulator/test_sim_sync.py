"""Ranks time-sharing a CPU: each exchange takes at least the profile's measured ``sync_s``
(a floor, hidden by a longer transfer), the all-reduce pays it once. Exact times, tiny cases."""

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
