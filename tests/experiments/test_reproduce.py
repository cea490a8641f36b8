"""`adaqp reproduce` on a tiny setup: every schedule trained, speedups and accuracies derived."""

from __future__ import annotations

import math

import pytest

from adaqp.errors import AdaqpInputError
from adaqp.experiments.reproduce import SCHEDULES, Setup, bar_plot, run, summarize
from adaqp.runtime.run import run_configs


def _loopback(cfgs, plan_dir, link):
    """Stands in for the emulated links (which need root): same runs, plain loopback."""
    return run_configs(cfgs, plan_dir, None)


def test_tiny_setup_on_loopback(tmp_path):
    s = Setup(dataset="cora", ranks=2, models=("gcn",), epochs=6, seeds=(0,), hidden=16, layers=2,
              replan_every=2, warmup=2, eval_every=2)
    rows = run(s, tmp_path, runner=_loopback, log=lambda m: None)
    assert [r["schedule"] for r in rows] == list(SCHEDULES) == ["vanilla", "quant", "overlap", "adaqp", "pipegcn"]
    base = rows[0]
    assert base["speedup"] == 1.0 and base["predicted_speedup"] == 1.0 and base["acc_delta_pts"] == 0.0
    for r in rows:
        assert math.isclose(r["speedup"], base["epoch_ms"] / r["epoch_ms"])
        assert 0 <= r["test_acc"] <= 100 and r["predicted_ms"] > 0
    summary = summarize(rows, s)
    assert set(summary) >= {"speedup_adaqp", "speedup_quant", "speedup_overlap", "acc_vanilla", "acc_adaqp",
                            "speedup_pipegcn", "predicted_speedup_pipegcn", "acc_pipegcn"}
    pipegcn = rows[-1]
    assert summary["speedup_pipegcn"] == pipegcn["speedup"] and summary["acc_pipegcn"] == pipegcn["test_acc"]
    assert pipegcn["bits"] == "32" and pipegcn["predicted_speedup"] > 0
    assert summary["target_met"] == (summary["speedup_adaqp"] >= 3 and
                                     abs(summary["acc_adaqp"] - summary["acc_vanilla"]) <= 0.3)
    assert bar_plot(tmp_path / "r.png", rows).stat().st_size > 1000


@pytest.mark.parametrize("bad", [dict(ranks=1), dict(epochs=3, warmup=3), dict(seeds=()), dict(models=("gin",))])
def test_setup_refuses_bad_input(bad):
    with pytest.raises(AdaqpInputError):
        Setup(**bad)
