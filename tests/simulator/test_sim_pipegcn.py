"""pipegcn predicted: the epoch's exchanges travel under one epoch of compute, max(exchange, compute).

Figures by hand on the tiny plan of tests/costmodel/test_analytic.py (two CPU ranks, 1 MB/s
endpoints with 1 ms latency, only SpMM costs time), then the simulator against the analytic model.
"""

import numpy as np
import pytest

from adaqp.cluster import ClusterSpec, Link, Network
from adaqp.costmodel.analytic import ModelShape, estimate
from adaqp.costmodel.profile import OPS, HardwareProfile, LinkModel, OpModel
from adaqp.costmodel.workload import PlanStats
from adaqp.simulator import simulate, synthetic_stats

US = 1e-6


def _profile(spmm_per_nnz_w=1e-6, net=(1e-3, 1e6), interference=1.5):
    ops = {name: OpModel(feats, tuple([0.0] * len(feats))) for name, feats in OPS.items()}
    ops["spmm_fwd"] = ops["spmm_bwd"] = OpModel(OPS["spmm_fwd"], (0.0, spmm_per_nnz_w, 0.0))
    links = {"net": LinkModel(*net), "allreduce": LinkModel(0.0, 1e9)}
    return HardwareProfile("hand", "spec-derived", "cpu", {"cores": 2, "compute_threads": 1}, ops, links,
                           interference)


def _stats():
    return PlanStats(inner=np.array([3, 2]), central=np.array([1, 1]), marginal=np.array([2, 1]),
                     halo=np.array([1, 2]), nnz_central=np.array([2, 1]), nnz_marginal=np.array([3, 2]),
                     nnz_marginal_halo=np.array([1, 2]), pair_rows=np.array([[0, 2], [1, 0]]))


LOCAL = ClusterSpec("local", nodes=1, devices_per_node=1, device="cpu", ranks_per_device=2,
                    intra_link=Link("loopback", 1e9, 1e-6))
ONE_LAYER = ModelShape("gcn", (4, 3), layer_norm=False, dropout=False)
ALLREDUCE = 4 * (4 * 3 + 3) / 1e9  # 15 parameters in fp32


def _both(shape, schedule, prof, bits=32):
    e = estimate(_stats(), shape, schedule, LOCAL, prof, bits)
    s = simulate(_stats(), shape, schedule, LOCAL, prof, bits)
    assert s.epoch_time_s == pytest.approx(e.epoch_time_s, rel=1e-9)
    return e


def test_communication_bound_epoch_is_the_exchange_by_hand():
    x = 1e-3 + 32 / 1e6  # rank 0 sends 2 rows x 4 x 4 B
    compute = (3 + 5) * 4 * US  # rank 0: central (2 + 1 loop) and marginal (3 + 2 loops) nnz x width
    vanilla = _both(ONE_LAYER, "vanilla", _profile())
    assert vanilla.epoch_time_s == pytest.approx(x + compute + ALLREDUCE, rel=1e-12)
    e = _both(ONE_LAYER, "pipegcn", _profile())
    # the exchange hides the whole compute (interference is not applied: see program.pipelined)
    assert e.epoch_time_s == pytest.approx(max(x, compute) + ALLREDUCE, rel=1e-12)
    assert e.exposed_comm_s == pytest.approx(x - compute + ALLREDUCE, rel=1e-12)
    assert e.phases_s == {"pipelined": pytest.approx(compute, rel=1e-12), "optimizer": 0.0}
    assert e.exchanges == [(-1, "stale", pytest.approx(x), "endpoint_tx")]


def test_compute_bound_epoch_hides_the_exchange_by_hand():
    prof = _profile(spmm_per_nnz_w=1e-3, net=(1e-6, 1e9))
    compute = (3 + 5) * 4 * 1e-3
    e = _both(ONE_LAYER, "pipegcn", prof)
    assert e.epoch_time_s == pytest.approx(compute + ALLREDUCE, rel=1e-12)
    assert e.exposed_comm_s == pytest.approx(ALLREDUCE)


def test_every_exchange_of_the_epoch_shares_one_period_by_hand():
    # two layers: fwd 0 (width 4), fwd 1 and bwd 1 (width 5) all in flight beside the epoch.
    # Rank 0 sends 2 x 16 + 2 x 20 + 1 x 20 = 92 B (fwd 2 rows, bwd the 1 halo row's gradient):
    # one latency, the busiest endpoint's bytes; vanilla pays three latencies and three transfers
    shape = ModelShape("gcn", (4, 5, 3), layer_norm=False, dropout=False)
    allreduce = 4 * (4 * 5 + 5 + 5 * 3 + 3) / 1e9
    e = _both(shape, "pipegcn", _profile())
    fwd_compute = 8 * 4 * US + 8 * 5 * US
    bwd_compute = (1 + 8) * 5 * US  # rank 0: halo part (1 nnz), then central + marginal-inner (3 + 5 - 1)
    x = 1e-3 + 92 / 1e6
    assert x > fwd_compute + bwd_compute
    assert e.epoch_time_s == pytest.approx(x + allreduce, rel=1e-12)
    vanilla = estimate(_stats(), shape, "vanilla", LOCAL, _profile())  # (unbalanced ranks: the
    assert vanilla.epoch_time_s > e.epoch_time_s + 2e-3  # simulator lets rank 1 post early there)


def test_pipegcn_q_quantizes_and_pipegcn_sends_fp32():
    shape = ModelShape("gcn", (64, 64, 3), layer_norm=False, dropout=False)
    fp32 = estimate(_stats(), shape, "pipegcn", LOCAL, _profile(), bits=4)  # pipegcn: fp32 whatever bits
    q4 = estimate(_stats(), shape, "pipegcn-q", LOCAL, _profile(), bits=4)
    # rank 0 sends 5 rows of width 64 an epoch (2 + 2 forward, 1 backward): fp32 4 B a value;
    # 4-bit 32 B a row + its 4 B header
    assert fp32.exchanges[0][2] == pytest.approx(1e-3 + 5 * 64 * 4 / 1e6, rel=1e-12)
    assert q4.exchanges[0][2] == pytest.approx(1e-3 + 5 * (32 + 4) / 1e6, rel=1e-12)


@pytest.mark.parametrize("cluster", [
    ClusterSpec("cpu4", 1, 1, "cpu", Link("loopback", 1e9, 0.0), ranks_per_device=4),
    ClusterSpec("h100", 2, 4, "h100", Link("nvlink", 4.5e11, 3e-6), Network("200gbit", 5e-6, gdr=True))])
def test_simulator_agrees_with_the_analytic_model(cluster, kit):
    gpu = cluster.device != "cpu"
    prof = kit.profile(net=(2e-5, 1e9), device="cuda" if gpu else "cpu", interference=1.3,
                       spmm=1e-9 if gpu else 2e-8)
    stats = synthetic_stats(50_000, 1_000_000, cluster.num_ranks, 0.3)
    shape = ModelShape("sage", (100, 256, 256, 47))
    for schedule, bits in (("pipegcn", 32), ("pipegcn-q", 4)):
        sim = simulate(stats, shape, schedule, cluster, prof, bits=bits)
        ana = estimate(stats, shape, schedule, cluster, prof, bits=bits)
        assert sim.epoch_time_s == pytest.approx(ana.epoch_time_s, rel=0.01), schedule
        assert sim.phases_s["pipelined"] > 0


def test_cli_estimate_and_simulate_take_pipegcn(capsys):
    from adaqp.cli.main import main

    common = ["sbm:nodes=400,classes=4,feat=16,deg=6,seed=1", "--parts", "2", "--layers", "2",
              "--hidden", "16", "--schedule", "pipegcn"]
    assert main(["estimate", *common]) == 0
    assert main(["simulate", *common]) == 0
    assert "pipegcn" in capsys.readouterr().out


def test_critical_path_names_the_pipelined_compute():
    # communication-bound: the path runs through the flow, whose time the compute beside it shares
    r = simulate(_stats(), ONE_LAYER, "pipegcn", LOCAL, _profile())
    owned = {k for seg in r.critical_path for k in seg.phases_s}
    assert "pipelined" in owned and "central" not in owned
