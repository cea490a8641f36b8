"""Re-predicting a recorded GPU check: the recorded model must come back, the staged link applies."""

import csv
import json
from pathlib import Path

import pytest

from adaqp.costmodel.profile import load_profile
from adaqp.errors import AdaqpInputError
from adaqp.experiments import gpu_repredict as G

PLAN = {"dataset": "sbm:nodes=1500,classes=4,feat=16,deg=8,homophily=0.9,seed=0", "ranks": [2],
        "schedules": ["vanilla", "quant"], "bits": "4", "epochs": 4, "warmup": 1, "hidden": 16, "layers": 2}


def _folder(tmp_path: Path, pred_ms) -> Path:
    prof = load_profile("h200")
    meta = {**prof.meta, "staged_exchange": {"2": {"latency_s": 5e-4, "bw_Bps": 1e9}}}
    prof.__class__.save(prof.__class__(**{**prof.__dict__, "meta": meta, "kind": "measured"}), tmp_path / "profile.json")
    (tmp_path / "gpu_check.json").write_text(json.dumps({"plan": PLAN}))
    with open(tmp_path / "gpu_check.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, ["ranks", "schedule", "epoch_meas_ms", "epoch_pred_ms", "epoch_err_pct", "comm_meas_ms"])
        w.writeheader()
        for s in PLAN["schedules"]:
            w.writerow({"ranks": 2, "schedule": s, "epoch_meas_ms": 10.0, "epoch_pred_ms": pred_ms[s],
                        "epoch_err_pct": 0.0, "comm_meas_ms": 5.0})
    return tmp_path


def test_profile_with_staged_adds_the_measured_links(tmp_path):
    folder = _folder(tmp_path, {"vanilla": 1.0, "quant": 1.0})
    out = G.profile_with_staged(folder / "profile.json", tmp_path / "p2.json")
    link = load_profile(out).links["staged@2"]
    assert (link.latency_s, link.bw_Bps) == (5e-4, 1e9)


def test_a_recorded_prediction_that_does_not_come_back_is_refused(tmp_path):
    with pytest.raises(AdaqpInputError, match="does not come back"):
        G.repredict(_folder(tmp_path, {"vanilla": 123.0, "quant": 45.0}), log=lambda *a: None)


def test_repredict_uses_the_staged_link(tmp_path):
    folder = _folder(tmp_path, {"vanilla": 1.0, "quant": 1.0})
    then = {r["schedule"]: r["epoch_pred_ms"]
            for r in G.predict(PLAN, str(folder / "profile.json"), tmp_path / "w", log=lambda *a: None)}
    rows = G.repredict(_folder(tmp_path, then), log=lambda *a: None)
    assert [r["schedule"] for r in rows] == ["vanilla", "quant"]
    assert [r["recorded_pred_ms"] for r in rows] == [then["vanilla"], then["quant"]]
    # a 1 GB/s staged link with 0.5 ms latency is slower than the spec profile's composed path
    assert all(r["pred_ms"] > r["recorded_pred_ms"] for r in rows)
