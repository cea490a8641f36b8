"""Predictions made before a device run, and their comparison with the run."""

from __future__ import annotations

import pytest

from adaqp.errors import AdaqpInputError
from adaqp.experiments import gpu_predict
from adaqp.experiments.gpu_check import dry_plan
from adaqp.io import write_csv


def test_predictions_cover_every_configuration_of_the_check():
    plan = dry_plan()
    rows = gpu_predict.predictions("h100", check=plan, log=lambda *a: None)
    assert {(r["ranks"], r["schedule"]) for r in rows} == {(k, s) for k in plan.ranks for s in plan.schedules}
    for r in rows:
        assert r["profile"] == "h100" and r["epoch_pred_ms"] > 0
        assert r["epoch_pred_ms"] == pytest.approx(r["comm_pred_ms"] + r["compute_pred_ms"], rel=1e-9)


def test_compare_gives_the_error_of_each_phase(tmp_path):
    pred = [{"ranks": 2, "schedule": "adaqp", "bits": 4, "epoch_pred_ms": 11.0, "comm_pred_ms": 4.0,
             "compute_pred_ms": 7.0, "profile": "h100"}]
    meas = [{"ranks": 2, "schedule": "adaqp", "bits": 4, "epoch_meas_ms": 10.0, "comm_meas_ms": 5.0,
             "compute_meas_ms": 5.0},
            {"ranks": 4, "schedule": "adaqp", "bits": 4, "epoch_meas_ms": 1.0, "comm_meas_ms": 1.0,
             "compute_meas_ms": 0.0}]
    p, m = write_csv(tmp_path / "p.csv", pred), write_csv(tmp_path / "m.csv", meas)
    (row,) = gpu_predict.compare(p, m)
    assert row["epoch_err_pct"] == pytest.approx(10.0)
    assert row["comm_err_pct"] == pytest.approx(-20.0) and row["compute_err_pct"] == pytest.approx(40.0)


def test_compare_refuses_a_run_missing_a_predicted_configuration(tmp_path):
    pred = [{"ranks": 4, "schedule": "quant", "bits": 4, "epoch_pred_ms": 1, "comm_pred_ms": 0,
             "compute_pred_ms": 1, "profile": "h100"}]
    meas = [{"ranks": 2, "schedule": "quant", "bits": 4, "epoch_meas_ms": 1, "comm_meas_ms": 0,
             "compute_meas_ms": 1}]
    with pytest.raises(AdaqpInputError, match="no measured row"):
        gpu_predict.compare(write_csv(tmp_path / "p.csv", pred), write_csv(tmp_path / "m.csv", meas))
