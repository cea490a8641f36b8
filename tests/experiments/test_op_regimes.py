"""experiments.op_regimes: training's phase timers beside the cost model's phases per regime."""

import pytest
from helpers.graphs import TINY_SBM, two_part_workload

from adaqp.costmodel.profile import load_profile
from adaqp.costmodel.program import Compute, build_program
from adaqp.experiments.op_regimes import PHASES, main, measured_by_phase, predicted_by_phase, table


@pytest.fixture(scope="module")
def workload():
    return two_part_workload(TINY_SBM, (20, 8, 8, 3))


def test_predicted_phases_sum_to_the_programs_compute_per_rank(workload):
    stats, shape = workload
    p = load_profile("cpu-2core")
    got = predicted_by_phase(stats, shape, p)
    prog = build_program(stats, shape, "vanilla", p)
    for r, ph in enumerate(got):
        want = sum(float(s.seconds[r]) for s in prog if isinstance(s, Compute))
        assert ph["compute"] == pytest.approx(want, rel=1e-12)
        assert ph["central"] > 0 and ph["dense"] > 0 and ph["quantize"] > 0  # vanilla's coding is the copy


def _rec(rank, epoch, scale):
    return {"rank": rank, "epoch": epoch, "epoch_time_s": 10.0 * scale, "communicate_s": 3.0 * scale,
            "allreduce_s": 1.0 * scale, **{f"{ph}_s": 0.5 * scale for ph in PHASES}}


def test_measured_phases_are_medians_after_warmup_per_rank():
    recs = [_rec(r, e, s) for r in (0, 1) for e, s in enumerate((100.0, 1.0, 2.0, 3.0 + r))]
    m = measured_by_phase(recs, ranks=2, warmup=1)  # epoch 0 (scale 100) left out
    assert m[0]["compute"] == pytest.approx(6.0 * 2.0) and m[0]["central"] == pytest.approx(1.0)
    assert m[1]["compute"] == pytest.approx(6.0 * 2.0)  # median of 1, 2, 4


def test_table_puts_training_beside_each_regime():
    row = {**{v: 0.001 for v in PHASES.values()}, "compute": 0.006}
    meas = [{**{k: 0.002 for k in PHASES}, "compute": 0.012}]
    lines = table(meas, [row], [{**row, "central": 0.003}])
    assert lines[0].split()[:5] == ["rank", "phase", "training", "in-epoch", "cold"]
    assert lines[1].split() == ["0", "central", "2.00", "1.00", "3.00"]
    assert lines[-1].split() == ["0", "compute", "12.00", "6.00", "6.00"] and len(lines) == 1 + len(PHASES) + 1


def test_bad_arguments_exit_2():
    with pytest.raises(SystemExit) as e:
        main(["--ranks", "1"])
    assert e.value.code == 2


def test_a_bad_dataset_is_one_line_exit_2(capsys):
    assert main(["--dataset", "nosuchgraph"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("op_regimes: ")
