"""`adaqp validate` puts predicted and measured peak memory beside the epoch times."""

from __future__ import annotations

import math

import numpy as np

from adaqp.costmodel.memory import CPU_RANK_OVERHEAD_BYTES, peak_memory_bytes
from adaqp.costmodel.program import ModelShape
from adaqp.costmodel.workload import PlanStats
from adaqp.experiments.validate import Grid, memory_row
from adaqp.experiments.validate_report import summarize

STATS = PlanStats(inner=np.array([100, 80]), central=np.array([70, 60]), marginal=np.array([30, 20]),
                  halo=np.array([20, 30]), nnz_central=np.array([300, 200]), nnz_marginal=np.array([150, 100]),
                  nnz_marginal_halo=np.array([60, 50]), pair_rows=np.array([[0, 30], [20, 0]]))
SHAPE = ModelShape("gcn", (10, 8, 3), False, True)


def test_memory_row_takes_the_busiest_rank_and_the_overhead_once():
    per_rank = [{"peak_memory_bytes": 200 * 2**20}, {"peak_memory_bytes": 250 * 2**20}]
    first = memory_row(STATS, SHAPE, 32, per_rank, "cpu", first=True)
    later = memory_row(STATS, SHAPE, 32, per_rank, "cpu", first=False)
    assert first["mem_meas_MiB"] == 250
    assert math.isclose(first["mem_pred_MiB"], float(peak_memory_bytes(STATS, SHAPE, 32, "cpu").max()) / 2**20)
    assert math.isclose(first["mem_pred_MiB"] - later["mem_pred_MiB"], CPU_RANK_OVERHEAD_BYTES / 2**20)
    assert math.isclose(first["mem_err_pct"], (first["mem_pred_MiB"] / 250 - 1) * 100)
    missing = memory_row(STATS, SHAPE, 32, [{"peak_memory_bytes": None}, {}], "cpu", first=True)
    assert math.isnan(missing["mem_err_pct"])


def test_summary_has_the_memory_median():
    rows = [{"epoch_err_pct": 1.0, "comm_err_pct": 1.0, "compute_err_pct": 1.0, "ranks": 2, "link": "loopback",
             "schedule": "vanilla", "dataset": "cora", "hidden": 8, "mem_err_pct": e} for e in (-30.0, 10.0, 5.0)]
    m = summarize(rows, Grid(), cores=4)["memory"]
    assert m["configs"] == 3 and m["median_abs_err_pct"] == 10.0 and m["max_abs_err_pct"] == 30.0
