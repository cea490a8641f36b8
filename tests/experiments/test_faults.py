"""The fault campaign: faults land where they are aimed, and two short trials (one on emulated
hosts where root and iproute2 exist) end within the target with nothing left and resume equal."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from adaqp.experiments import fault_trial, faults

SBM = "sbm:nodes=400,classes=4,feat=16,deg=6,seed=2"
_can_emulate = os.geteuid() == 0 and shutil.which("ip") and shutil.which("tc")


def test_faults_cover_every_phase_at_epochs_where_it_happens():
    chosen = faults.choose_faults(20, 3, 8, seed=1)
    assert {ph: sum(f[1] == ph for f in chosen) for ph in ("exchange", "allreduce", "checkpoint", "resolve")} \
        == {"exchange": 5, "allreduce": 5, "checkpoint": 5, "resolve": 5}
    assert {f[0] for f in chosen} <= {0, 1, 2} and len({f[0] for f in chosen}) > 1
    assert all(1 <= e <= 7 for _, _, e in chosen)
    assert {e for _, ph, e in chosen if ph == "resolve"} <= {1, 3, 5}  # re-solves after epochs 2, 4, 6
    assert chosen == faults.choose_faults(20, 3, 8, seed=1)  # a campaign can be rerun as it was


def test_job_pids_finds_a_job_and_its_children():
    job = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); time.sleep(30)"],
                           start_new_session=True)
    try:
        for _ in range(100):
            if len(fault_trial.job_pids(job.pid)) == 2:
                break
            subprocess.run(["sleep", "0.05"])
        assert len(fault_trial.job_pids(job.pid)) == 2 and job.pid in fault_trial.job_pids(job.pid)
    finally:
        os.killpg(job.pid, 9)
        job.wait()


@pytest.mark.parametrize("argv, words", [(["--trials", "0"], "--trials"), (["--epochs", "3"], "--epochs must be >= 4"),
                                         (["--link", "fast"], "--link")])
def test_bad_flags_are_one_line_and_exit_2(argv, words, tmp_path, capsys):
    try:
        code = faults.main([*argv, "--out", str(tmp_path / "o")])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0], err
    assert not (tmp_path / "o" / "summary.json").exists()


def test_two_trials_end_cleanly_and_resume_equal(tmp_path):
    out = tmp_path / "campaign"
    # seed 7 draws a re-solve kill and a checkpoint-write kill
    argv = ["--trials", "2", "--out", str(out), "--dataset", SBM, "--nprocs", "2", "--epochs", "4", "--seed", "7"]
    assert faults.main(argv) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["trials"] == 2 and s["named"] == 2 and s["exits_within_target"] == 2
    assert s["max_exit_s"] is not None and 0 < s["max_exit_s"] <= 60
    assert s["orphans"] == 0 and s["netns_left"] == 0 and s["checkpoint_loads"] == 2 and s["resumed_equal"] == 2
    assert s["by_mode"] == ({"local": 1, "link": 1} if _can_emulate else {"local": 2})
    rows = (out / "faults.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("trial,mode,rank,phase,epoch")
    for i in range(2):  # each killed rank really died by its own SIGKILL, and the launcher said which
        log = (out / f"trial{i:02d}" / "fault.log").read_text()
        assert "adaqp fault: SIGKILL rank" in log and "failed: killed by signal 9 (SIGKILL)" in log
