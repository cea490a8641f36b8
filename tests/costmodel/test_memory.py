"""The predicted peak memory (costmodel/memory.py): its terms by hand, and who uses it."""

import json

import numpy as np
import pytest

from adaqp.costmodel import memory as M
from adaqp.costmodel.program import ModelShape
from adaqp.costmodel.workload import PlanStats

# two ranks: 100 and 80 inner rows; rank 0 sends 30 rows to rank 1 and receives 20 from it
STATS = PlanStats(inner=np.array([100, 80]), central=np.array([70, 60]), marginal=np.array([30, 20]),
                  halo=np.array([20, 30]), nnz_central=np.array([300, 200]), nnz_marginal=np.array([150, 100]),
                  nnz_marginal_halo=np.array([60, 50]), pair_rows=np.array([[0, 30], [20, 0]]))
GCN = ModelShape("gcn", (10, 8, 3), layer_norm=False, dropout=True)


def test_terms_by_hand():
    t = M.memory_terms(STATS, GCN)
    n, h, s, E = 100, 20, 30, 450
    assert t["data"][0] == 4 * n * 10 + 11 * n
    assert t["plan"][0] == 20 * n + 8 * h + 16 * s + 16 * E
    assert t["parameters"][0] == 20 * GCN.num_params == 20 * (10 * 8 + 8 + 8 * 3 + 3)
    # fwd layer 0 (10 wide), fwd and bwd layer 1 (8 wide): send + receive, fp32, two exchangers
    assert t["buffers"][0] == 2 * 4 * (s + h) * (10 + 8 + 8)
    assert t["operators"][0] == 2 * (2 * 12 * (E + n) + 8 * (3 * n + 30 + h + 6))  # self loops folded in
    # layer 0 keeps its aggregate (10) and ReLU output (8); layer 1 its mask (1 B), aggregate (8), logits (3)
    saved0, saved1 = 4 * n * 10 + 4 * n * 8, n * 8 + 4 * n * 8 + 4 * n * 3
    fwd1 = saved0 + 4 * 8 * (3 * n + h) + n * 8
    bwd1 = saved0 + saved1 + 4 * (2 * n * 3 + 3 * n * 8) + 4 * 8 * (h + s)
    bwd0 = saved0 + 4 * 2 * n * 8  # layer 0's input (the features) gets no gradient
    fwd0 = 4 * 10 * (3 * n + h) + n * 10
    assert t["activations"][0] == max(fwd0, fwd1, bwd0, bwd1)
    assert float(M.peak_memory_bytes(STATS, GCN)[0]) == sum(float(v[0]) for v in t.values())


def test_quantized_buffers_shrink_but_evaluation_stays_fp32():
    fp32, two = (M.memory_terms(STATS, GCN, b)["buffers"] for b in (32, 2))
    eval_only = M.memory_terms(STATS, GCN)["buffers"] / 2
    assert np.all(two < fp32) and np.all(two > eval_only)


def test_cpu_adds_allocator_slack_and_the_process_overhead_once():
    live = M.peak_memory_bytes(STATS, GCN)
    cpu = M.peak_memory_bytes(STATS, GCN, device="cpu")
    later = M.peak_memory_bytes(STATS, GCN, device="cpu", first_in_process=False)
    assert np.allclose(cpu, live * M.CPU_ALLOCATOR_SLACK + M.CPU_RANK_OVERHEAD_BYTES)
    assert np.allclose(later, live * M.CPU_ALLOCATOR_SLACK)


def test_a_profiles_measured_cpu_memory_replaces_the_constants():
    live = M.peak_memory_bytes(STATS, GCN)
    mine = {"allocator_slack": 2.0, "rank_overhead_bytes": 100.0}
    assert np.allclose(M.peak_memory_bytes(STATS, GCN, device="cpu", cpu_memory=mine), live * 2.0 + 100.0)
    half = M.peak_memory_bytes(STATS, GCN, device="cpu", cpu_memory={"allocator_slack": 2.0})
    assert np.allclose(half, live * 2.0 + M.CPU_RANK_OVERHEAD_BYTES)
    assert np.allclose(M.peak_memory_bytes(STATS, GCN, device="cuda", cpu_memory=mine), live)


def test_estimate_predicts_with_the_profiles_cpu_memory(tmp_path):
    import dataclasses

    from adaqp.cli.main import main
    from adaqp.costmodel.profile import load_profile

    argv = ["estimate", "cora", "--parts", "2", "--cluster", "local-cpu", "--layers", "2", "--hidden", "16"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    prof = load_profile("cpu-2core")
    path = dataclasses.replace(prof, cpu_memory={"allocator_slack": 3.0, "rank_overhead_bytes": 0.0}).save(tmp_path / "p.json")
    assert main([*argv, "--profile", str(path), "--out", str(tmp_path / "b")]) == 0
    a, b = (json.loads((tmp_path / d / "summary.json").read_text())["peak_memory_bytes"]["max"] for d in "ab")
    live = (a - M.CPU_RANK_OVERHEAD_BYTES) / M.CPU_ALLOCATOR_SLACK
    assert b == pytest.approx(3.0 * live, rel=1e-6)


def test_adaptive_reloads_the_graph_on_rank_0_only():
    base, ad = M.memory_terms(STATS, GCN), M.memory_terms(STATS, GCN, adaptive=True)
    assert ad["solver"][0] == (base["data"] + base["plan"]).sum() and ad["solver"][1] == 0


@pytest.mark.parametrize("wider", [ModelShape("gcn", (10, 16, 3), False, True), ModelShape("sage", (10, 8, 3), False, True),
                                   ModelShape("gcn", (10, 8, 3), True, True)])
def test_wider_sage_or_layer_norm_hold_more(wider):
    assert np.all(M.peak_memory_bytes(STATS, wider) > M.peak_memory_bytes(STATS, GCN))


def test_whatif_uses_this_model():
    from adaqp.experiments import whatif

    assert whatif.memory_bytes is M.peak_memory_bytes


@pytest.mark.parametrize("command, extra", [("estimate", []), ("simulate", ["--schedule", "adaqp", "--bits", "4"])])
def test_estimate_and_simulate_report_it(tmp_path, capsys, command, extra):
    from adaqp.cli.main import main

    assert main([command, "cora", "--parts", "2", "--cluster", "local-cpu", "--layers", "2", "--hidden", "16",
                 *extra, "--out", str(tmp_path)]) == 0
    m = json.loads((tmp_path / "summary.json").read_text())["peak_memory_bytes"]
    assert len(m["per_rank"]) == 2 and m["max"] == max(m["per_rank"]) and m["device"] == "cpu"
    assert m["max"] > M.CPU_RANK_OVERHEAD_BYTES  # a CPU profile: resident growth, overhead included
    assert "predicted peak memory per rank (MiB" in capsys.readouterr().out
