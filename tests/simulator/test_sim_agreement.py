"""Without contention the simulator is the analytic model; it is deterministic; its books balance."""

import numpy as np
import pytest

from adaqp.cluster import ClusterSpec, Link, Network
from adaqp.costmodel.analytic import estimate
from adaqp.costmodel.program import ModelShape
from adaqp.simulator import simulate, synthetic_stats

SHAPE = ModelShape("sage", (100, 256, 256, 47))
SCHEDULES = ["vanilla", "quant", "overlap", "adaqp"]
PCIE = Link("pcie", 16e9, 5e-6)


def _clusters():
    return {
        "cpu-4": ClusterSpec("cpu4", 1, 1, "cpu", Link("loopback", 1e9, 0.0), ranks_per_device=4),
        "cpu-2x2-1gbit": ClusterSpec("cpu2x2", 2, 1, "cpu", Link("loopback", 1e9, 0.0),
                                     Network("1gbit", 5e-5), ranks_per_device=2),
        # NICs that carry 80 % with 2 flows each way: every NIC crowded all exchange long
        "cpu-3x1-crowded": ClusterSpec("cpu3x1", 3, 1, "cpu", Link("loopback", 1e9, 0.0),
                                       Network("1gbit", 5e-5, bw_crowded={2: "800mbit"})),
        "gpu-2x2-gdr-off": ClusterSpec("v100", 2, 2, "v100", PCIE, Network("10gbit", 3e-5)),
        "gpu-2x4-gdr-on": ClusterSpec("h100", 2, 4, "h100", Link("nvlink", 4.5e11, 3e-6),
                                      Network("200gbit", 5e-6, gdr=True)),
        "gpu-shared-4": ClusterSpec("h200", 1, 1, "h200", PCIE, ranks_per_device=4, transport="gloo-staged"),
    }


def _setup(name, kit):
    cluster = _clusters()[name]
    gpu = cluster.device != "cpu"
    prof = kit.profile(net=(2e-5, 1e9), device="cuda" if gpu else "cpu", pcie=(1e-5, 2e10) if gpu else None,
                       interference=1.3, spmm=1e-9 if gpu else 2e-8)
    return synthetic_stats(50_000, 1_000_000, cluster.num_ranks, 0.3), cluster, prof


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("name", list(_clusters()))
def test_balanced_ranks_agree_with_the_analytic_model(name, schedule, kit):
    stats, cluster, prof = _setup(name, kit)
    sim = simulate(stats, SHAPE, schedule, cluster, prof, bits=4)
    ana = estimate(stats, SHAPE, schedule, cluster, prof, bits=4)
    assert sim.epoch_time_s == pytest.approx(ana.epoch_time_s, rel=0.01)
    assert sim.allreduce_s == pytest.approx(ana.allreduce_s, rel=1e-9)
    if cluster.ranks_per_device == 1 or cluster.device == "cpu":  # ranks in lock-step
        assert sim.comm_time_s == pytest.approx(ana.comm_time_s, rel=0.01)
        assert sim.exposed_comm_s == pytest.approx(ana.exposed_comm_s, rel=0.01)


def test_one_flow_per_resource_agrees_with_the_analytic_model(kit):
    # two ranks, each sends the other one message: one flow per endpoint side
    stats = synthetic_stats(10_000, 200_000, 2, 0.2)
    cluster = ClusterSpec("two", 2, 1, "cpu", Link("loopback", 1e9, 0.0), Network("1gbit", 1e-4))
    prof = kit.profile(net=(2e-5, 1e9))
    for schedule in SCHEDULES:
        sim = simulate(stats, SHAPE, schedule, cluster, prof, bits=8)
        ana = estimate(stats, SHAPE, schedule, cluster, prof, bits=8)
        assert sim.epoch_time_s == pytest.approx(ana.epoch_time_s, rel=0.01), schedule


def test_the_same_inputs_give_the_same_epoch_bit_for_bit(kit):
    stats = synthetic_stats(20_000, 400_000, 8, 0.4, jitter=0.7, seed=3)  # irregular: contention
    cluster = ClusterSpec("g", 2, 2, "v100", PCIE, Network("10gbit", 3e-5), ranks_per_device=2,
                          transport="gloo-staged")
    prof = kit.profile(net=(2e-5, 1e9), device="cuda", pcie=(1e-5, 2e10), interference=1.3)
    a, b = (simulate(stats, SHAPE, "adaqp", cluster, prof, bits=4) for _ in range(2))
    assert a.epoch_time_s == b.epoch_time_s
    assert a.events == b.events and a.critical_path == b.critical_path and a.utilisation == b.utilisation


@pytest.mark.parametrize("schedule", ["vanilla", "adaqp"])
def test_critical_path_tiles_the_epoch_and_utilisation_is_a_fraction(schedule, kit):
    stats = synthetic_stats(20_000, 400_000, 4, 0.4, jitter=0.8, seed=1)
    stats, cluster, prof = stats, _clusters()["gpu-2x2-gdr-off"], _setup("gpu-2x2-gdr-off", kit)[2]
    r = simulate(stats, SHAPE, schedule, cluster, prof, bits=4)
    assert sum(r.phases_s.values()) == pytest.approx(r.epoch_time_s, rel=1e-9)
    assert r.compute_time_s + r.exposed_comm_s == pytest.approx(r.epoch_time_s, rel=1e-12)
    segs = r.critical_path
    assert segs[0].start_s == 0.0 and segs[-1].end_s == pytest.approx(r.epoch_time_s)
    assert all(a.end_s == pytest.approx(b.start_s) for a, b in zip(segs, segs[1:]))
    assert all(0.0 <= u["utilisation"] <= 1.0 + 1e-9 for u in r.utilisation)
    assert {s.kind for s in segs} >= {"compute", "exchange", "allreduce"}
    assert np.max(r.rank_end_s) == pytest.approx(r.epoch_time_s)


def test_contention_the_analytic_model_cannot_see(kit):
    # rank 0 gets 100 MB from ranks 1 and 2, which each also send 50 MB to two other ranks. Every
    # busy endpoint carries 200 MB: at 1 GB/s the analytic model says 0.2 s. But while the 50 MB
    # messages are in flight each sender splits its endpoint three ways, rank 0 receives at 2/3
    # speed and never catches up: its last 50 + 50 MB need another 0.1 s after 0.15 s.
    from adaqp.costmodel.network import exchange_s
    from adaqp.costmodel.program import Exchange
    from adaqp.simulator import simulate_program

    B = np.zeros((4, 4))
    B[1, 0] = B[2, 0] = 100e6
    B[1, 2] = B[1, 3] = B[2, 1] = B[2, 3] = 50e6
    cluster, prof = kit.cpu(ranks_per_node=4), kit.profile(net=(0.0, 1e9))
    assert exchange_s(cluster, prof, B)[0] == pytest.approx(0.2)
    r = simulate_program([Exchange(kit.traffic(B), None)], cluster, prof)
    assert r.epoch_time_s == pytest.approx(0.25, rel=1e-12)
    assert r.critical_path_lines()[0].endswith("1->0 via endpoint_rx[0]  (communicate 250.000 ms)")


def test_shaped_links_drain_their_buckets_and_refill_during_compute(kit):
    # 2 hosts, 1 MB/s NICs with 0.5 MB token buckets, 4 MB/s endpoints, no latency. 1.5 MB each way:
    # 4 MB/s until the buckets empty (1/6 s), the rest at 1 MB/s: 1 s. 0.2 s of compute refills
    # 0.2 MB, so the next 0.6 MB exchange takes 1/15 s + 1/3 s: the epoch ends at 1.6 s
    import dataclasses

    from adaqp.cluster import Network
    from adaqp.costmodel.program import Compute, Exchange
    from adaqp.simulator import simulate_program

    cluster = dataclasses.replace(kit.cpu(nodes=2, ranks_per_node=1, nic=(0.0, 1e6)),
                                  network=Network(1e6, 0.0, burst_bytes=0.5e6))
    prof = kit.profile(net=(0.0, 4e6))
    big, small = np.array([[0, 1.5e6], [1.5e6, 0]]), np.array([[0, 0.6e6], [0.6e6, 0]])
    program = [Exchange(kit.traffic(big), None), Compute("central", np.array([0.2, 0.2])),
               Exchange(kit.traffic(small, layer=1), None)]
    r = simulate_program(program, cluster, prof)
    assert r.epoch_time_s == pytest.approx(1.6, rel=1e-12)
    no_bucket = dataclasses.replace(cluster, network=Network(1e6, 0.0))
    assert simulate_program(program, no_bucket, prof).epoch_time_s == pytest.approx(1.5 + 0.2 + 0.6, rel=1e-12)
