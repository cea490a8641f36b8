"""`adaqp validate` on tiny grids: real runs on loopback ranks, predictions beside them."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import pytest

from adaqp.errors import AdaqpInputError
from adaqp.experiments.validate import PHASES, Grid, combine_rounds, quick, run_grid
from adaqp.experiments.validate_report import summarize
from adaqp.runtime.model import ModelConfig

TINY = Grid(datasets=("cora",), ranks=(2,), links=(None,), schedules=("vanilla", "adaqp"), bits=("4", "adaptive"),
            models=("gcn",), epochs=4, warmup=2, hiddens=(16,), layers=2, profile_for=False)


def test_grid_counts_default_and_quick():
    g = Grid()
    # 3 graphs x 2 hidden widths; ranks {2,3,4} x links 2; models 2 x (vanilla, overlap, quant 4, adaqp 4 + adaptive)
    assert len({d.split(":")[0] for d in g.datasets}) == 3 and len(g.hiddens) == 2
    assert g.size() == (3 * 2) * (3 * 2) * 2 * (2 + 1 + 2)
    assert ("gcn", "quant", "adaptive") not in g.points() and ("gcn", "adaqp", "adaptive") in g.points()
    q = quick(g)
    assert 8 <= q.size() <= 16 and q.datasets == g.datasets[:1]


@pytest.mark.parametrize("bad", [dict(ranks=(1,)), dict(epochs=3, warmup=3), dict(bits=("3",)),
                                 dict(models=("gin",)), dict(schedules=("fast",)), dict(rounds=0), dict(corun_rounds=0),
                                 dict(op_timing="warm")])
def test_grid_refuses_bad_axes(bad):
    with pytest.raises(AdaqpInputError):
        Grid(**bad)


def _row(meas, pred, mem=(100.0, 90.0), **key):
    r = {"dataset": "cora", "hidden": 16, "ranks": 2, "link": "1gbit", "model": "gcn", "schedule": "vanilla",
         "bits": "32", "net_MBps": 100.0, "mem_meas_MiB": mem[0], "mem_pred_MiB": mem[1],
         "mem_err_pct": (mem[1] / mem[0] - 1) * 100, **key}
    for ph, (m, p) in zip(PHASES, zip(meas, pred)):
        r.update({f"{ph}_meas_ms": m, f"{ph}_pred_ms": p, f"{ph}_err_pct": (p / m - 1) * 100})
    return r


def test_rounds_combine_into_medians_with_the_measured_spread():
    rounds = [[_row((100.0, 40.0, 60.0), (90.0, 30.0, 60.0), epoch_meas_iqr_pct=4.0),
               _row((10.0, 5.0, 5.0), (10.0, 5.0, 5.0), bits="4")],
              [_row((120.0, 50.0, 70.0), (95.0, 35.0, 60.0), epoch_meas_iqr_pct=9.0)],
              [_row((80.0, 30.0, 50.0), (100.0, 40.0, 60.0), mem=(110.0, 90.0), epoch_meas_iqr_pct=2.0)]]
    a, b = combine_rounds(rounds)
    assert (a["bits"], a["rounds"], b["bits"], b["rounds"]) == ("32", 3, "4", 1)
    assert (a["epoch_meas_ms"], a["epoch_pred_ms"], a["comm_meas_ms"], a["comm_pred_ms"]) == (100.0, 95.0, 40.0, 35.0)
    assert a["epoch_err_pct"] == pytest.approx(-5.0) and a["comm_err_pct"] == pytest.approx(-12.5)
    assert a["epoch_meas_spread_pct"] == pytest.approx(40.0)  # (120 - 80) / 100
    assert a["mem_meas_MiB"] == 100.0 and a["mem_err_pct"] == pytest.approx(-10.0)
    assert a["epoch_meas_iqr_pct"] == 4.0  # the median of the rounds' own spreads
    assert a["epoch_meas_dev_pct"] == pytest.approx(20.0)  # 120 and 80 are both 20 % from 100
    assert a["epoch_err_worst_round_pct"] == pytest.approx(25.0)  # round 3: 100 predicted, 80 measured
    assert b["epoch_meas_spread_pct"] == 0.0 and b["epoch_err_pct"] == 0.0 and b["epoch_meas_dev_pct"] == 0.0


def test_summary_reports_the_noise_floor_of_the_rounds():
    rounds = [[_row((100.0, 40.0, 60.0), (100.0, 40.0, 60.0)), _row((50.0, 20.0, 30.0), (50.0, 20.0, 30.0), bits="4")],
              [_row((110.0, 40.0, 70.0), (100.0, 40.0, 60.0)), _row((60.0, 20.0, 40.0), (50.0, 20.0, 30.0), bits="4")]]
    s = summarize(combine_rounds(rounds), Grid(), cores=4)
    # medians 105 and 55: the rounds sit 5/105 and 5/55 from them; the predictions miss 110 and 60 most
    assert s["noise_floor_pct"]["max"] == pytest.approx(500 / 55)
    assert s["noise_floor_pct"]["median"] == pytest.approx((500 / 105 + 500 / 55) / 2)
    assert s["worst_round_err_pct"]["max"] == pytest.approx((1 - 50 / 60) * 100)
    assert summarize(rounds[0], Grid(), cores=4)["noise_floor_pct"] == {}  # one round: no floor to report


def test_measured_phases_take_the_slowest_rank_after_warmup_and_the_epochs_spread():
    from adaqp.experiments.validate import measured_phases

    # epoch 0 is warm-up; then the slowest rank's epochs are 10, 20, 30, 40, 50 ms
    recs = [{"epoch": 0, "rank": 0, "epoch_time_s": 1.0, "communicate_s": 0.5}]
    for e, t in enumerate((0.010, 0.020, 0.030, 0.040, 0.050), start=1):
        recs += [{"epoch": e, "rank": 0, "epoch_time_s": t, "communicate_s": 0.004, "allreduce_s": 0.001},
                 {"epoch": e, "rank": 1, "epoch_time_s": t / 2, "communicate_s": 0.002}]
    m = measured_phases(recs, warmup=1, overlap=False)
    assert m["epoch"] == pytest.approx(0.030) and m["comm"] == pytest.approx(0.005)
    assert m["compute"] == pytest.approx(0.025)
    assert m["epoch_iqr_pct"] == pytest.approx((0.040 - 0.020) / 0.030 * 100)  # quartiles 20 and 40 ms


def test_tiny_grid_measures_and_predicts(tmp_path):
    asked, logged = [], []

    def corun(ranks, rows, nnz, width, rounds):  # the benchmark's bookkeeping (the benchmark: tests/runtime)
        asked.append((ranks, width, rounds))
        return 1.25

    rows, extrapolated = run_grid(TINY, tmp_path, log=logged.append, corun_measure=corun)
    assert asked == [(2, 16, 15)]  # once per (ranks, dataset, hidden), before it trains
    assert all(r["corun"] == 1.25 for r in rows) and any("co-run of 2 ranks" in m for m in logged)
    _predicted_with_the_measured_corun(rows[0], tmp_path, 1.25)
    assert isinstance(extrapolated, list)
    assert [(r["schedule"], r["bits"]) for r in rows] == [("vanilla", "32"), ("adaqp", "4"), ("adaqp", "adaptive")]
    for r in rows:
        for ph in ("epoch", "comm", "compute"):
            assert r[f"{ph}_meas_ms"] > 0 and r[f"{ph}_pred_ms"] > 0
            assert math.isclose(r[f"{ph}_err_pct"], (r[f"{ph}_pred_ms"] / r[f"{ph}_meas_ms"] - 1) * 100)
    s = summarize(rows, TINY, cores=1)
    errs = sorted(abs(r["epoch_err_pct"]) for r in rows)
    assert s["configs"] == 3 and s["median_abs_err_pct"] == errs[1] and s["max_abs_err_pct"] == errs[-1]
    assert s["per_workload"]["cora h16"]["configs"] == 3
    assert s["oversubscribed"]["configs"] == 3 and s["within_cores"]["configs"] == 0  # 2 ranks > 1 core
    assert (tmp_path / "r2-loopback" / "cluster.yaml").exists()


def test_in_epoch_grid_predicts_with_the_ops_timed_right_before_training(tmp_path, monkeypatch):
    """``op_timing="in-epoch"``: before the dataset trains, its epochs' ops are timed in order for
    every model shape and width the cell runs, and the cell's predictions read that profile."""
    from dataclasses import replace

    from adaqp.runtime.profiling import epoch_loop
    from adaqp.experiments.validate import cluster_for, plan_dir_for, predicted_phases

    made, real = [], epoch_loop.in_epoch_profile

    def recording(base, sequences, device="cpu", **kw):
        made.append((real(base, sequences, device, reps=1, note=kw.get("note", "")), len(sequences)))
        return made[-1][0]

    monkeypatch.setattr(epoch_loop, "in_epoch_profile", recording)
    logged = []
    grid = replace(TINY, op_timing="in-epoch")
    rows, _ = run_grid(grid, tmp_path, log=logged.append, corun_measure=lambda *a, **k: 1.25)
    # one model shape, 2 ranks: the vanilla epoch and quant at 2, 4 and 8 bits (adaptive may use each)
    assert len(made) == 1 and made[0][1] == 2 * 4
    assert list((tmp_path / "r2-loopback").glob("profile-in-epoch-*.json"))  # kept beside the cell's cluster spec
    assert any("timed in epoch order" in m for m in logged)
    prof = replace(made[0][0], corun_by_ranks={**made[0][0].corun_by_ranks, "2": 1.25})
    from adaqp.costmodel.program import ModelShape
    from adaqp.costmodel.workload import PlanStats
    from adaqp.data.spec import load_dataset
    from adaqp.halo import HaloPlan

    g = load_dataset("cora")
    stats = PlanStats.from_halo_plan(HaloPlan.load(plan_dir_for(tmp_path, "cora", 2)))
    shape = ModelShape.of(ModelConfig("gcn", TINY.layers, 16), g.num_features, g.num_classes)
    want = predicted_phases(stats, shape, "vanilla", 32, cluster_for(2, None), prof)[0]
    assert rows[0]["schedule"] == "vanilla" and rows[0]["epoch_pred_ms"] == pytest.approx(want["epoch"] * 1e3, rel=1e-9)
    assert Grid().op_timing == "cold"


def _predicted_with_the_measured_corun(row, work, factor):
    """The row's prediction is the simulator's with the profile's co-run entry set to ``factor``."""
    from dataclasses import replace

    from adaqp.costmodel.profile import load_profile
    from adaqp.costmodel.program import ModelShape
    from adaqp.costmodel.workload import PlanStats
    from adaqp.data.spec import load_dataset
    from adaqp.experiments.validate import cluster_for, plan_dir_for, predicted_phases
    from adaqp.halo import HaloPlan

    g = load_dataset(row["dataset"])
    stats = PlanStats.from_halo_plan(HaloPlan.load(plan_dir_for(work, row["dataset"], row["ranks"])))
    shape = ModelShape.of(ModelConfig(row["model"], TINY.layers, row["hidden"]), g.num_features, g.num_classes)
    prof = load_profile(TINY.profile)
    k = str(row["ranks"])
    pred = {}
    for f in (factor, prof.corun_by_ranks[k]):
        with_f = replace(prof, corun_by_ranks={**prof.corun_by_ranks, k: f})
        pred[f] = predicted_phases(stats, shape, row["schedule"], 32, cluster_for(row["ranks"], None), with_f)[0]
    assert row["compute_pred_ms"] == pytest.approx(pred[factor]["compute"] * 1e3, rel=1e-9)
    assert pred[factor]["compute"] != pytest.approx(pred[prof.corun_by_ranks[k]]["compute"], rel=1e-3)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """One small ``adaqp validate`` run that the CLI tests read (a run costs two spawns)."""
    out = tmp_path_factory.mktemp("cli") / "v"
    cmd = [sys.executable, "-m", "adaqp", "validate", "--dataset", "cora", "--ranks", "2", "--link", "none",
           "--schedules", "overlap", "--models", "sage", "--epochs", "3", "--warmup", "1", "--hidden", "8",
           "--layers", "2", "--no-profile-for", "--corun-rounds", "1", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out, r


def test_cli_writes_table_plot_and_summary(cli_run):
    out, r = cli_run
    s = json.loads((out / "summary.json").read_text())
    assert s["configs"] == 1 and set(s) >= {"configs", "median_abs_err_pct", "max_abs_err_pct", "per_workload",
                                            "oversubscribed", "extrapolated"}
    assert (out / "validate_scatter.png").stat().st_size > 1000
    assert "median |error|" in r.stdout and "co-run of 2 ranks" in r.stdout + r.stderr


def test_cli_writes_memory_columns_and_line(cli_run):
    out, r = cli_run
    row = next(csv.DictReader((out / "validate.csv").open()))
    assert float(row["mem_meas_MiB"]) > 0 and float(row["mem_pred_MiB"]) > 0
    s = json.loads((out / "summary.json").read_text())
    assert s["memory"]["configs"] == 1
    assert "peak memory, busiest rank (1 configurations): median |error|" in r.stdout


def test_cli_bad_ranks_is_one_line_exit_2(tmp_path):
    r = subprocess.run([sys.executable, "-m", "adaqp", "validate", "--ranks", "1", "--link", "none"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "ranks" in r.stderr


def _can_emulate() -> bool:
    try:
        from adaqp.runtime.emulate import check_available

        check_available()
        return True
    except Exception:  # noqa: BLE001 - any reason means: skip
        return False


@pytest.mark.skipif(not _can_emulate(), reason="network emulation needs root and iproute2 (ip, tc)")
def test_measured_network_is_within_the_shaped_rate():
    from adaqp.experiments.validate import cluster_for, measure_network

    lat, bw, crowded = measure_network(3, "100mbit")
    assert 0.5 * 12.5e6 < bw <= 12.5e6 and lat >= 0
    # the all-to-all of 3 hosts (2 flows each way) carries at most the shaper's rate per host
    assert list(crowded) == [2] and 0.5 * 12.5e6 < crowded[2] <= 12.5e6
    spec = cluster_for(3, "100mbit", (lat, bw, crowded))
    assert spec.network.bw_Bps == bw and spec.network.bw_crowded == crowded
    assert spec.shared_host and spec.nodes == 3


def test_profile_for_grid_measures_every_workloads_shapes_before_training(tmp_path, monkeypatch):
    """The grid's op sizes go to measure_shapes (stubbed here: no timing) and the grid then
    predicts with the profile it wrote; the partitions it made are the ones the runs load."""
    from dataclasses import replace

    from adaqp.runtime.profiling import profiler
    from adaqp.costmodel.profile import load_profile
    from adaqp.experiments.validate import plan_dir_for, profile_for_grid

    seen = {}

    def fake_measure(base, shapes, **kw):
        seen.update(shapes)
        return replace(base, name="measured-for-grid")

    monkeypatch.setattr(profiler, "measure_shapes", fake_measure)
    grid = replace(TINY, datasets=("cora", "sbm:nodes=300,classes=3,feat=24,deg=5,seed=1"), hiddens=(16, 32),
                   profile_for=True)
    out = profile_for_grid(grid, tmp_path, log=lambda m: None)
    assert load_profile(out.profile).name == "measured-for-grid" and out.profile.endswith("profile.json")
    widths = {s["width"] for s in seen["spmm_fwd"]}
    assert {1433, 24, 16, 32} <= widths  # both graphs' input widths and both hidden widths
    assert {s["in_dim"] for s in seen["gemm_fwd"]} >= {1433, 24, 16, 32}
    assert all((plan_dir_for(tmp_path, d, 2) / "halo_plan.json").exists() for d in grid.datasets)
