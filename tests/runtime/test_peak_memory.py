"""Measured peak memory: the CPU definition (RSS growth over the training loop) and summary.json."""

import json

import numpy as np
import pytest
import torch

from adaqp.runtime.memory import PeakMemory, summarize

MiB = 2**20


def test_cpu_peak_counts_what_training_holds_not_what_loading_freed():
    mem = PeakMemory()
    loaded = np.ones(160 * MiB // 8)  # the whole graph read by every rank, then cut to its rows...
    kept = np.ones(16 * MiB // 8)
    del loaded  # ...and dropped before training
    mem.training_starts(torch.device("cpu"))
    if mem.measure != "cpu_rss_growth":
        pytest.skip("this kernel refuses to reset the peak RSS")
    work = np.ones(64 * MiB // 8)  # an activation during an epoch
    work[::512] = 2.0
    del work
    peak = mem.peak_bytes()
    assert kept.sum() > 0
    # kept rows (16) + epoch work (64) count, the freed load (160) does not; slack for the allocator
    assert 78 * MiB <= peak <= 120 * MiB, peak / MiB


def test_summary_orders_ranks_and_takes_the_max():
    res = [{"rank": 1, "peak_memory_bytes": 30, "peak_memory_measure": "m"},
           {"rank": 0, "peak_memory_bytes": 50, "peak_memory_measure": "m"}]
    assert summarize(res) == {"per_rank": [50, 30], "max": 50, "measure": "m"}


def test_train_writes_peak_memory_per_rank(tmp_path, capsys):
    from adaqp.cli.main import main

    assert main(["train", "sbm:nodes=3000,classes=4,feat=64,deg=8,seed=1", "--nprocs", "2", "--epochs", "3",
                 "--hidden", "64", "--eval-every", "3", "--out", str(tmp_path)]) == 0
    m = json.loads((tmp_path / "summary.json").read_text())["peak_memory_bytes"]
    assert len(m["per_rank"]) == 2 and m["max"] == max(m["per_rank"]) and m["measure"] == "cpu_rss_growth"
    # at least each rank's own features (1,500 x 64 fp32), at most a few hundred MiB for this small graph
    assert all(375_000 < b < 500 * MiB for b in m["per_rank"]), m
    assert "peak memory per rank (MiB" in capsys.readouterr().out
