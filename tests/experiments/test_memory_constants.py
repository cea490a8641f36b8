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


def test_out_writes_the_profile_with_its_measured_cpu_memory(tmp_path, monkeypatch, capsys):
    from adaqp.costmodel.profile import load_profile

    def fake(dataset, model, hidden, runs, epochs, work):  # no training: the rows a run would give
        return [{"dataset": dataset, "run": i, "rank": 0, "rss": 100.0 + 60.0 * (i == 1) + 171.0 * 2**20 * (runs == 1),
                 "live": 100.0} for i in range(runs)]

    monkeypatch.setattr(MC, "measure", fake)
    assert MC.main(["--out", str(tmp_path / "p.json")]) == 0
    p = load_profile(tmp_path / "p.json")
    assert p.cpu_memory == {"allocator_slack": 1.6, "rank_overhead_bytes": float(171 * 2**20 + 100 - 160)}
    assert p.meta["cpu_memory"]["by"].endswith("memory_constants") and p.name == "cpu-2core"
    assert "wrote" in capsys.readouterr().out.splitlines()[-1]


def test_an_unknown_profile_is_refused_before_anything_trains(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(MC, "measure", lambda *a: pytest.fail("trained"))
    assert MC.main(["--profile", "no-such-profile", "--out", str(tmp_path / "p.json")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
