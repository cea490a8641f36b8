"""Training runs end to end: outputs, resume, a rank that dies, plans refused before launch."""

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from adaqp.errors import AdaqpInputError
from adaqp.runtime.config import TrainConfig
from adaqp.runtime.launch import RankFailure, spawn
from adaqp.runtime.model import ModelConfig
from adaqp.runtime.run import run_local
from adaqp.runtime.prepare import prepare_plan

SBM = "sbm:nodes=400,classes=4,feat=16,deg=6,seed=2"
WORKERS = str(Path(__file__).with_name("train_workers.py"))


def _cfg(**kw):
    base = dict(dataset=SBM, nprocs=2, model=ModelConfig("sage", 2, 16, 0.5, True), epochs=4,
                eval_every=2, warmup_epochs=1, progress=False)
    base.update(kw)
    return TrainConfig(**base)


def test_cli_train_writes_csv_trace_and_summary(tmp_path, capsys):
    from adaqp.cli.main import main

    out = tmp_path / "run"
    assert main(["train", SBM, "--nprocs", "2", "--schedule", "adaqp", "--bits", "4", "--epochs", "4",
                 "--hidden", "16", "--layers", "2", "--eval-every", "2", "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    for key in ("test_acc", "val_acc", "epoch_time_s_median", "comm_time_s_median", "schedule", "nprocs"):
        assert key in s, key
    assert s["schedule"] == "adaqp" and s["nprocs"] == 2 and 0.0 <= s["test_acc"] <= 1.0
    assert s["device"] == "cpu" and s["transport"] == ["gloo"] and s["rank_devices"] == ["cpu", "cpu"]
    assert s["epoch_time_s_median"] > 0 and 0 < s["comm_time_s_median"] < s["epoch_time_s_median"] * 2
    rows = (out / "epochs.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 * 2 and rows[0].startswith("epoch,rank,loss,epoch_time_s")
    trace = json.loads((out / "trace.json").read_text())["traceEvents"]
    spans = [e for e in trace if e["ph"] == "X"]
    assert {e["pid"] for e in spans} == {0, 1}
    assert {"quantize", "dequantize", "central", "marginal", "communicate", "dense"} <= {e["name"] for e in spans}
    assert "test_acc" in capsys.readouterr().out


def _losses(results):
    return [r["loss"] for r in results[0]["records"]]


def test_resume_reproduces_the_uninterrupted_losses(tmp_path):
    common = dict(schedule="adaqp", bits="4", epochs=6, checkpoint_every=3)
    full = _cfg(**common, checkpoint_dir=str(tmp_path / "a"))
    prepare_plan(full, tmp_path / "plan")
    plan = str(tmp_path / "plan")
    ref = spawn("adaqp.runtime.trainer:train_rank", 2, (full.to_dict(), plan))
    first = _cfg(**{**common, "epochs": 3}, checkpoint_dir=str(tmp_path / "b"))
    spawn("adaqp.runtime.trainer:train_rank", 2, (first.to_dict(), plan))
    resumed = _cfg(**common, checkpoint_dir=str(tmp_path / "b"), resume=True)
    rest = spawn("adaqp.runtime.trainer:train_rank", 2, (resumed.to_dict(), plan))
    assert [r["epoch"] for r in rest[0]["records"]] == [3, 4, 5]
    # bit for bit: model, Adam moments, dropout RNG and quantization RNG all restored
    assert _losses(rest) == _losses(ref)[3:]
    assert len(set(_losses(ref))) == 6  # the losses move: the comparison is not vacuous


def test_a_dead_rank_stops_the_run_with_a_clear_error(tmp_path):
    cfg = _cfg(epochs=500, timeout_s=30)
    prepare_plan(cfg, tmp_path)
    t0 = time.monotonic()
    with pytest.raises(RankFailure, match=r"rank 1 failed: exited with code 7"):
        spawn(f"{WORKERS}:train_then_die", 2, (cfg.to_dict(), str(tmp_path)), timeout_s=30)
    assert time.monotonic() - t0 < 60


def test_mismatched_plans_are_refused_before_launch(tmp_path):
    prepare_plan(_cfg(nprocs=2), tmp_path / "two")
    with pytest.raises(AdaqpInputError, match="3 ranks|--nprocs is 3"):
        run_local(_cfg(nprocs=3, plan_dir=str(tmp_path / "two")), None)
    from adaqp.halo import HaloPlan
    from adaqp.plans import BitPlan

    pr = HaloPlan.load(tmp_path / "two").pair_rows()
    wrong = BitPlan.uniform(pr + np.eye(2, k=1, dtype=np.int64), 2, 4)  # one row too many on 0->1
    path = wrong.save(tmp_path / "wrong")
    with pytest.raises(AdaqpInputError, match="BitPlan has"):
        run_local(_cfg(nprocs=2, plan_dir=str(tmp_path / "two"), schedule="adaqp", bits=str(path)), None)


def test_same_entry_point_runs_under_torchrun(tmp_path):
    import shutil
    import subprocess
    import sys

    from adaqp.runtime.launch import free_port

    torchrun = shutil.which("torchrun")
    cmd = ([torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]) + [
        "--nnodes", "1", "--nproc-per-node", "2", "--rdzv-backend", "c10d",
        "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "-m", "adaqp", "train", SBM,
        "--launcher", "torchrun", "--epochs", "3", "--hidden", "8", "--layers", "2", "--out", str(tmp_path)]
    # faulthandler: a rank that dies of a signal prints its Python threads' stacks
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    assert r.returncode == 0, r.stderr[-6000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["nprocs"] == 2 and s["epochs"] == 3
    assert len((tmp_path / "epochs.csv").read_text().splitlines()) == 1 + 3 * 2


def test_adaptive_bits_resolve_on_rank0_and_reach_every_rank(tmp_path):
    cfg = _cfg(schedule="adaqp", bits="adaptive", replan_every=2, epochs=5,
               checkpoint_every=5, checkpoint_dir=str(tmp_path / "ckpt"))
    prepare_plan(cfg, tmp_path / "plan")
    res = spawn("adaqp.runtime.trainer:train_rank", 2, (cfg.to_dict(), str(tmp_path / "plan")))
    solved = [r["epoch"] for r in res[0]["records"] if "solve_s" in r]
    assert solved == [1, 3]  # after epochs 2 and 4; not after the last one
    from adaqp.runtime.checkpoint import load_checkpoint
    from adaqp.runtime.resume import latest_checkpoint
    from adaqp.runtime.trainer import bitplan_from_tensors

    plans = [bitplan_from_tensors(load_checkpoint(latest_checkpoint(cfg.checkpoint_dir, r))["bitplan"]) for r in (0, 1)]
    assert plans[0] == plans[1]  # broadcast: every rank runs the same plan
    widths = {b for h in plans[0].histogram().values() for b in h}
    assert widths and widths <= {2, 4, 8}  # a plan from the solver's width set
