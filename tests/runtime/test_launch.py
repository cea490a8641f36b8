"""Local multi-rank launcher: results come back, and a failing rank never hangs the parent."""

import importlib.util
import multiprocessing
import os
import socket
import time
from pathlib import Path

import pytest
import torch.distributed as dist

from adaqp.errors import AdaqpInputError
from adaqp.runtime.launch import RankFailure, _fn_spec, free_port, init_process_group_from_env, spawn

WORKERS = Path(__file__).with_name("launch_workers.py")


def _worker(name):
    return f"{WORKERS}:{name}"


def _load_workers():
    spec = importlib.util.spec_from_file_location("adaqp_test_launch_workers", WORKERS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _assert_reaped(pids):
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_two_ranks_return_values_in_rank_order():
    out = spawn(_worker("allreduce_sum"), 2, args=(10.0,), env={"ADAQP_TEST_TAG": "x"})
    assert [o["rank"] for o in out] == [0, 1]
    assert all(o["sum"] == 30.0 and o["world"] == 2 for o in out)
    assert all(o["master"] == "127.0.0.1" for o in out)  # the rendezvous stays on loopback
    assert all(o["tag"] == "x" for o in out)


def test_three_ranks_with_a_callable_from_a_file_module():
    # a callable from a module that cannot be imported by name travels as "file.py:function"
    fn = _load_workers().allreduce_sum
    assert _fn_spec(fn) == f"{WORKERS}:allreduce_sum"
    out = spawn(fn, 3, args=(1.0,))
    assert [o["sum"] for o in out] == [6.0, 6.0, 6.0]


def test_importable_functions_travel_by_module_name():
    assert _fn_spec(free_port) == "adaqp.runtime.launch:free_port"
    assert spawn("operator:add", 1) == [1]  # fn(rank=0, world_size=1)


def test_raising_rank_is_named_with_its_exception(capfd):
    start = time.monotonic()
    with pytest.raises(RankFailure, match=r"rank 1 failed: ValueError: bad input on rank 1") as ei:
        spawn(_worker("raise_on_rank"), 2, args=(1,))
    assert time.monotonic() - start < 30
    assert ei.value.rank == 1 and "Traceback" in ei.value.traceback


@pytest.mark.parametrize("how, cause", [("exit", "exited with code 3"), ("kill", "killed by signal 9")])
def test_dead_rank_is_reported_and_blocked_peers_are_killed(tmp_path, how, cause):
    death = tmp_path / "death"
    start = time.monotonic()
    with pytest.raises(RankFailure, match=f"rank 2 failed: {cause}"):
        spawn(_worker("die_on_rank"), 3, args=(2, how), env={"ADAQP_TEST_DEATH_FILE": str(death)})
    reported = time.time()
    assert time.monotonic() - start < 30
    assert reported - float(death.read_text()) < 10  # death to exception, not the 60 s PG timeout
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("adaqp-rank")]


def test_bad_arguments_are_refused_before_starting_anything():
    with pytest.raises(AdaqpInputError):
        spawn(lambda r, w: None, 2)
    with pytest.raises(AdaqpInputError):
        spawn("no_colon_here", 2)
    with pytest.raises(AdaqpInputError):
        spawn(_worker("allreduce_sum"), 0)


def test_free_port_is_bindable():
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.mark.parametrize("torchrun", [False, True])
def test_init_from_env_joins_torchrun_or_runs_alone(monkeypatch, torchrun):
    for var in TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)
    if torchrun:  # what torchrun exports for a one-rank job
        for var, value in zip(TORCHRUN_VARS, ("0", "1", "127.0.0.1", str(free_port()))):
            monkeypatch.setenv(var, value)
    try:
        assert init_process_group_from_env("gloo", timeout_s=30) == (0, 1)
        assert init_process_group_from_env("gloo", timeout_s=30) == (0, 1)  # joined already: reused
    finally:
        dist.destroy_process_group()


def test_init_from_env_refuses_a_partial_torchrun_environment(monkeypatch):
    for var in TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(AdaqpInputError, match="MASTER_ADDR"):
        init_process_group_from_env("gloo", timeout_s=30)
