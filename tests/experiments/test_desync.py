"""experiments.desync: how far apart ranks leave each exchange, and how many compute at once."""

import pytest
from helpers.graphs import TINY_SBM, two_part_workload

from adaqp.cluster import ClusterSpec
from adaqp.costmodel.profile import load_profile
from adaqp.experiments.desync import compute_intervals, concurrency, exchange_spreads, main, report
from adaqp.simulator import simulate

MS = 1_000_000  # ns


def _ev(rank, name, start_ms, end_ms, track="main", epoch=0):
    return {"rank": rank, "name": name, "track": track, "start_ns": start_ms * MS, "end_ns": end_ms * MS,
            "epoch": epoch}


def test_compute_is_the_main_track_less_exchanges_waits_and_allreduce():
    evs = [_ev(0, "forward", 0, 60), _ev(0, "communicate", 20, 50, track="comm"), _ev(0, "wait", 50, 52),
           _ev(0, "central", 52, 55), _ev(0, "backward", 60, 100), _ev(0, "allreduce", 90, 100)]
    assert compute_intervals(evs)[0] == [(0, 20 * MS), (52 * MS, 90 * MS)]


def test_compute_leaves_out_the_warmup_epochs():
    evs = [_ev(0, "forward", 0, 10, epoch=0), _ev(0, "forward", 10, 30, epoch=1)]
    assert compute_intervals(evs, min_epoch=1)[0] == [(10 * MS, 30 * MS)]


def test_concurrency_shares_the_busy_time_by_ranks_computing():
    got = concurrency({0: [(0, 10 * MS)], 1: [(5 * MS, 15 * MS)], 2: [(20 * MS, 25 * MS)]})
    assert got == pytest.approx({1: 15 / 20, 2: 5 / 20})  # 0-5, 10-15, 20-25 alone; 5-10 together
    assert concurrency({}) == {}


def test_spreads_are_per_exchange_after_warmup():
    evs = []
    for epoch, late_ms in ((0, 100), (1, 4), (2, 6)):
        for rank, extra in ((0, 0), (1, late_ms)):
            evs += [_ev(rank, "communicate", 10, 20 + extra, "comm", epoch),
                    _ev(rank, "communicate", 30, 40 + 2 * extra, "comm", epoch)]
    sp = exchange_spreads(evs, min_epoch=1)
    assert sp == [pytest.approx([0.004, 0.006]), pytest.approx([0.008, 0.012])]


def test_an_epoch_a_rank_did_not_finish_is_left_out():
    evs = [_ev(0, "communicate", 0, 5, "comm", 1), _ev(1, "communicate", 0, 7, "comm", 1),
           _ev(0, "communicate", 0, 5, "comm", 2), _ev(1, "forward", 0, 7, "main", 2)]
    assert exchange_spreads(evs) == [pytest.approx([0.002])]


def test_the_simulator_lets_two_ranks_out_of_every_exchange_together():
    """A simulated send is done when it has arrived, so two ranks wait for the same two flows."""
    sim = simulate(*two_part_workload(TINY_SBM, (20, 8, 8, 3)), "vanilla", ClusterSpec.emulated(2, 12.5e6),
                   load_profile("cpu-2core"))
    evs = [e for per_rank in sim.events for e in per_rank]
    sp = exchange_spreads(evs)
    assert len(sp) == 5 and all(s == [0.0] for s in sp)  # 3 layers forward, 2 backward
    lines = report(evs, evs, ranks=2, warmup=0)
    assert lines[1].split() == ["1", "0.00", "0.00"] and lines[-2].split()[0] == "1"
    ph = {"epoch": sim.epoch_time_s, "compute": sim.compute_time_s, "comm": sim.exposed_comm_s}
    with_phases = report(evs, evs, ranks=2, warmup=0, phases={"measured": ph, "simulated": ph})
    assert with_phases[:len(lines)] == lines and with_phases[-3].split()[0] == "epoch"
    assert with_phases[-1].split()[-2:] == [f"{sim.exposed_comm_s * 1e3:.1f}"] * 2


def test_bad_arguments_exit_2():
    with pytest.raises(SystemExit) as e:
        main(["--epochs", "2", "--warmup", "3"])
    assert e.value.code == 2


def test_a_bad_dataset_is_one_line_exit_2(capsys):
    assert main(["--dataset", "nosuchgraph"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("desync: ")
