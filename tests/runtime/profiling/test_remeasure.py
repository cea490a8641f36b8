"""Re-measuring some ops of a measured profile keeps the rest and the sizes, and says so."""

import subprocess
import sys
from dataclasses import replace

import pytest

from adaqp.costmodel.profile import load_profile
from adaqp.runtime.profiling.remeasure import remeasure
from adaqp.errors import AdaqpInputError


def _small(prof, op, sizes):
    """The bundled profile with ``op`` keeping only a few small stored points (a fast test)."""
    m = prof.ops[op]
    pts = tuple({**p, "median_s": p["median_s"]} for p in m.points if (p["rows"], p["width"]) in sizes)
    assert len(pts) == len(sizes)
    return replace(prof, ops={**prof.ops, op: replace(m, points=pts)})


def test_remeasure_replaces_only_the_named_op_at_the_same_sizes():
    prof = _small(load_profile("cpu-2core"), "relu", {(1000, 16), (1000, 64)})
    new = remeasure(prof, ["relu"], "a test", progress=None)
    old_pts, new_pts = prof.ops["relu"].points, new.ops["relu"].points
    assert [(p["rows"], p["width"]) for p in new_pts] == [(p["rows"], p["width"]) for p in old_pts]
    assert all(p["median_s"] > 0 for p in new_pts)
    assert all(new.ops[o] is prof.ops[o] for o in prof.ops if o != "relu")
    assert new.links == prof.links and new.sync_s == prof.sync_s
    entry = new.meta["remeasured"][-1]
    assert entry["why"] == "a test" and [c["op"] for c in entry["ops"]] == ["relu"]
    assert entry["threads"] == prof.meta["compute_threads"]


def test_an_optional_op_the_profile_lacks_is_measured_at_its_stand_ins_sizes():
    prof = load_profile("cpu-2core")
    m = prof.ops["gemm_fwd"]
    few = tuple(p for p in m.points if p["in_dim"] <= 64 and p["rows"] <= 1000)[:2]
    assert few
    ops = {k: v for k, v in prof.ops.items() if k != "gemm_bwd_w"}
    lacking = replace(prof, ops={**ops, "gemm_fwd": replace(m, points=few)})
    new = remeasure(lacking, ["gemm_bwd_w"], "a test", progress=None)
    got = [(p["rows"], p["in_dim"], p["out_dim"]) for p in new.ops["gemm_bwd_w"].points]
    assert got == [(p["rows"], p["in_dim"], p["out_dim"]) for p in few]


def test_remeasure_refuses_what_it_cannot_do():
    prof = load_profile("cpu-2core")
    with pytest.raises(AdaqpInputError, match="unknown op"):
        remeasure(prof, ["spmm_sideways"], "x", progress=None)
    with pytest.raises(AdaqpInputError, match="spec-derived"):
        remeasure(load_profile("h200"), ["relu"], "x", progress=None)


def test_cli_update_needs_ops():
    r = subprocess.run([sys.executable, "-m", "adaqp", "profile", "--update", "cpu-2core", "--out", "x.json"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--update and --ops go together" in r.stderr
    assert "Traceback" not in r.stderr


def test_sync_re_measures_the_host_sync_tables_for_the_rank_counts_held(monkeypatch):
    from adaqp.runtime.profiling import remeasure as rm

    monkeypatch.setattr(rm, "SYNC_REPS", 20)  # a fast test: the statistic, not the figure
    prof = load_profile("cpu-2core")
    two = replace(prof, sync_s={"2": prof.sync_s["2"]}, allreduce_sync_s={"2": prof.allreduce_sync_s["2"]},
                  sync_by_gap={step: {"2": t["2"]} for step, t in prof.sync_by_gap.items()})
    new = remeasure(two, ["sync"], "a test", progress=None)
    assert set(new.sync_s) == set(new.allreduce_sync_s) == {"2"}
    for step in ("exchange", "allreduce"):
        pts = new.sync_by_gap[step]["2"]
        assert len(pts) == 3 and all(g > 0 and e >= 0 for g, e in pts)
    assert new.ops is two.ops and new.links == two.links and new.corun_by_ranks == two.corun_by_ranks
    entry = new.meta["remeasured"][-1]
    assert entry["why"] == "a test" and entry["reps"] == 20
    assert entry["before"]["sync_s"] == {"2": prof.sync_s["2"]}


def test_sync_of_a_gpu_profile_is_refused():
    with pytest.raises(AdaqpInputError, match="shared-GPU benchmark"):
        remeasure(load_profile("h200-measured"), ["sync"], "a test", progress=None)


def test_corun_re_measures_the_co_run_table_for_the_rank_counts_held(monkeypatch):
    from adaqp.runtime.profiling import ranks

    asked = {}

    def fake(max_ranks, rows, nnz, width, rounds, window_s):  # the bookkeeping, not the benchmark (slow)
        asked.update(max_ranks=max_ranks, rows=rows)
        return {str(k): 1.0 + k / 10 for k in range(2, max_ranks + 1)}

    monkeypatch.setattr(ranks, "measure_corun", fake)
    prof = load_profile("cpu-2core")
    new = remeasure(prof, ["corun"], "a test", progress=None)
    assert asked["max_ranks"] == max(int(k) for k in prof.corun_by_ranks)
    assert new.corun_by_ranks == {"2": 1.2, "3": 1.3, "4": 1.4}
    assert new.ops is prof.ops and new.sync_s == prof.sync_s and new.sync_by_gap == prof.sync_by_gap
    entry = new.meta["remeasured"][-1]
    assert entry["tables"] == ["corun_by_ranks"] and entry["before"] == {"corun_by_ranks": dict(prof.corun_by_ranks)}
