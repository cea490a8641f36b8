"""experiments.gpu_check: the whole GPU check's code path as a CPU dry run (tiny sizes), with a
stand-in kernel-benchmark hook; a failing stage is recorded and the next one still runs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from adaqp.experiments import gpu_check


def _hook(quick, device):
    assert quick is True and device == "cpu"
    return [{"kernel": "fused", "rows": 10, "width": 64, "GBps": 1.0}]


def test_dry_run_writes_json_csv_and_predictions(tmp_path):
    logs = []
    res = gpu_check.run(tmp_path, device="cpu", dry=True, kernel_hook=_hook, log=logs.append)
    assert all(s["ok"] for s in res["stages"].values()), res["stages"]
    assert set(res["stages"]) == {"kernels", "profile", "profile_summary", "train_k2"}
    data = json.loads((tmp_path / "gpu_check.json").read_text())
    for key in ("gpu", "date", "torch", "triton", "python", "profile_source", "rows", "stages"):
        assert key in data
    assert data["profile_source"] == "measured by stage profile" and (tmp_path / "profile.json").exists()
    prof = json.loads((tmp_path / "profile.json").read_text())  # the dry grid's host tables: 2 ranks, 1 size
    assert set(prof["corun_by_ranks"]) == {"2"} and set(prof["sync_s"]) == {"2"}
    assert [len(v) for v in prof["sync_by_gap"]["exchange"].values()] == [1]
    rows = list(csv.DictReader((tmp_path / "gpu_check.csv").open()))
    assert [(r["ranks"], r["schedule"], r["bits"]) for r in rows] == [("2", "vanilla", "32"), ("2", "adaqp", "4")]
    for r in rows:
        assert float(r["epoch_meas_ms"]) > 0 and float(r["epoch_pred_ms"]) > 0
    assert list(csv.DictReader((tmp_path / "kernels.csv").open()))[0]["kernel"] == "fused"
    assert "predicted ms" in logs[-1]  # the table comes last


def test_a_failed_stage_is_recorded_and_the_rest_runs(tmp_path, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("profiler exploded")

    monkeypatch.setattr(gpu_check, "stage_profile", broken)

    def no_training(out, device, plan, ranks, profile):
        assert profile == "cpu-2core"  # the bundled fallback stands in for the failed measurement
        return []

    monkeypatch.setattr(gpu_check, "stage_train", no_training)
    res = gpu_check.run(tmp_path, device="cpu", dry=True, kernel_hook=_hook, log=lambda m: None)
    assert res["stages"]["profile"]["ok"] is False and "profiler exploded" in res["stages"]["profile"]["error"]
    assert res["stages"]["train_k2"]["ok"] and "NOT measured" in res["profile_source"]


def test_cuda_without_gpu_is_a_one_line_input_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the refusal cannot happen here")
    r = subprocess.run([sys.executable, "-m", "adaqp.experiments.gpu_check", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "no CUDA device" in r.stderr
