"""The solver benchmark runs end to end on a small instance and states the issue's target."""

from adaqp.experiments import bench_solver


def test_bench_solver_prints_the_target_lines(capsys):
    assert bench_solver.main(["--groups", "150", "--nodes", "3000", "--time-limit", "5"]) == 0
    out = capsys.readouterr().out
    for solver in ("cbc", "highs"):
        line = next(x for x in out.splitlines() if x.startswith(f"target {solver}/exact"))
        assert "certified gap (full LP" in line and ("met" in line)


def test_bench_solver_prints_the_branch_and_bound_line(capsys):
    assert bench_solver.main(["--groups", "150", "--nodes", "3000", "--time-limit", "5", "--bnb", "2"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("bnb (y branch and bound, compact relaxation)"))
    assert "branching variables" in line and "certified gap" in line and "met" in line
