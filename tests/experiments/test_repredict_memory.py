"""experiments.repredict_memory: a validate table's peaks predicted again by the current model."""

import csv

import pytest

from adaqp.costmodel.memory import peak_memory_bytes
from adaqp.costmodel.workload import PlanStats
from adaqp.data.spec import load_dataset
from adaqp.experiments import repredict_memory as R
from adaqp.experiments.validate import Grid, model_shape, train_configs
from adaqp.halo import HaloPlan
from adaqp.runtime.prepare import prepare_plan

DS = "sbm:nodes=300,classes=3,feat=24,deg=5,seed=1"
HEAD = ["dataset", "ranks", "link", "hidden", "model", "schedule", "bits", "mem_pred_MiB", "mem_meas_MiB"]
ROWS = [[DS, 2, "1gbit", 16, "gcn", "vanilla", "32", 190.0, 200.0],
        [DS, 2, "1gbit", 16, "gcn", "quant", "2", 1.0, 2.0],
        [DS, 2, "1gbit", 16, "gcn", "adaqp", "adaptive", 1.0, 2.0]]


def _table(path, rows=ROWS, head=HEAD):
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(head)
        w.writerows(rows)
    return path


def test_rows_are_predicted_as_the_model_predicts_their_plan(tmp_path, capsys):
    out = tmp_path / "new.csv"
    assert R.main([str(_table(tmp_path / "v.csv")), "--layers", "2", "--out", str(out)]) == 0
    got = list(csv.DictReader(out.open()))
    assert [r["schedule"] for r in got] == ["vanilla", "quant"]  # the adaptive row has no stored BitPlan
    grid = Grid(datasets=(DS,), ranks=(2,), hiddens=(16,), layers=2, models=("gcn",), bits=("2",), profile_for=False)
    cfgs = {c.schedule: c for c in train_configs(grid, DS, 2, None)}
    prepare_plan(cfgs["vanilla"], tmp_path / "plan")
    stats = PlanStats.from_halo_plan(HaloPlan.load(tmp_path / "plan"))
    for r, first in zip(got, (True, False)):  # the cell's first run pays the process overhead
        cfg = cfgs[r["schedule"]]
        want = float(peak_memory_bytes(stats, model_shape(cfg, load_dataset(DS)), cfg.uniform_bits, "cpu",
                                       first_in_process=first).max()) / 2**20
        assert float(r["mem_repred_MiB"]) == pytest.approx(want)
        assert float(r["mem_repred_err_pct"]) == pytest.approx((want / float(r["mem_meas_MiB"]) - 1) * 100)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("all") and "table" in lines[1] and "now" in lines[1]
    assert any(x.startswith("quant") for x in lines)


@pytest.mark.parametrize("make, words", [
    (lambda p: p / "none.csv", "no such file"),
    (lambda p: _table(p / "t.csv", [r[:3] for r in ROWS], HEAD[:3]), "missing columns"),
    (lambda p: _table(p / "t.csv", [ROWS[2]]), "no uniform-width rows"),
    (lambda p: _table(p / "t.csv", [ROWS[0][:-1] + ["nan"], ROWS[1][:-1] + [""]]), "no uniform-width rows"),
])
def test_bad_tables_are_one_line_and_exit_2(tmp_path, capsys, make, words):
    assert R.main([str(make(tmp_path))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
