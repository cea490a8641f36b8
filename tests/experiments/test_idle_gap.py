from adaqp.experiments.idle_gap import main, make_step, measure


def test_the_step_computes_and_times_itself():
    step = make_step(rows=50, width=4)
    assert step() > 0


def test_measure_gives_a_ratio_per_gap():
    r = measure(rows=50, width=4, gaps_s=[0.0, 0.001], reps=3)
    assert r["base_ms"] > 0
    assert sorted(r["ratio"]) == [0.0, 1.0] and all(v > 0 for v in r["ratio"].values())


def test_main_prints_one_line_per_gap(capsys):
    assert main(["--rows", "50", "--width", "4", "--gaps-ms", "1,2", "--reps", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("step of 50 rows x width 4") and len(out) == 3
    assert out[1].startswith("  after 1 ms idle:") and out[2].startswith("  after 2 ms idle:")
