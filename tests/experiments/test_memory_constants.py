"""experiments.memory_constants: the CPU memory model's two constants, measured off validate's graphs."""

import pytest

from adaqp.experiments import memory_constants as MC
from adaqp.experiments.validate import DEFAULT_DATASETS


def test_the_slack_comes_from_later_runs_and_the_overhead_from_the_tiny_graph():
    rows = [{"dataset": "a", "run": 0, "rank": 0, "rss": 500.0, "live": 100.0},  # first run: ignored
            {"dataset": "a", "run": 1, "rank": 0, "rss": 140.0, "live": 100.0},
            {"dataset": "b", "run": 1, "rank": 0, "rss": 300.0, "live": 200.0},
            {"dataset": "b", "run": 1, "rank": 1, "rss": 320.0, "live": 200.0}]
    tiny = [{"dataset": "t", "run": 0, "rank": r, "rss": 171.5 + r, "live": 1.0} for r in range(2)]
    got = MC.constants(rows, tiny)
    assert got["slack"] == pytest.approx(1.5)  # median of 1.4, 1.5, 1.6
    assert got["slack_by_dataset"] == pytest.approx({"a": 1.4, "b": 1.55})
    assert got["overhead_bytes"] == pytest.approx(170.5)  # 171.5 + 0.5 - 1.5 x 1


def test_its_graphs_are_not_validates():
    assert not {ds for ds, _, _ in MC.WORKLOADS} & set(DEFAULT_DATASETS)


def test_a_run_measures_growth_and_live_bytes_per_run_and_rank(tmp_path):
    rows = MC.measure(*MC.TINY, 2, 1, tmp_path)
    assert [(r["run"], r["rank"]) for r in rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(r["rss"] > 0 and r["live"] > 0 for r in rows)


def test_bad_epochs_are_one_line_and_exit_2(capsys):
    assert MC.main(["--epochs", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--epochs" in err[0]
