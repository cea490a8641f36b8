"""runtime.profiling.profiler on a tiny grid (real timings, real 2-rank Gloo group), the bundled
cpu-2core profile, and ``adaqp profile`` errors."""

import json
import os

import pytest

from adaqp.cli.main import main
from adaqp.costmodel.profile import OPS, REQUIRED_LINKS, load_profile
from adaqp.runtime.profiling.profiler import Grid, measure, time_fn
from adaqp.runtime.profiling.ranks import interference_summary

TINY = Grid("tiny", spmm=((1000, 4000, 16), (2000, 40_000, 32), (8000, 32_000, 64), (4000, 100_000, 16)),
            gemm=((500, 16, 16), (2000, 64, 32), (4000, 32, 64), (1000, 128, 128)),
            elementwise=((500, 16), (4000, 32), (20_000, 64)), adam=(1000, 30_000, 300_000),
            link_bytes=(1024, 65_536, 1 << 20), allreduce_bytes=(4096, 65_536, 1 << 20),
            warmup=1, reps=3, budget_s=0.05, sync_reps=10, sync_spmm=((500, 2000), (2000, 10_000)), host_ranks=3,
            interference={"rows": 20_000, "nnz": 100_000, "width": 32, "reps": 3, "max_bytes": 8 << 20,
                          "corun_window_s": 0.05})

# a "small" and a "large" call of every op: the large one does >= 50x the work on every feature
SMALL = dict(rows=1000, nnz=4000, width=16, in_dim=16, out_dim=16, elements=16_000)
LARGE = dict(rows=50_000, nnz=200_000, width=64, in_dim=128, out_dim=128, elements=3_200_000)


@pytest.fixture(scope="module")
def tiny_profile():
    return measure("cpu", nprocs=2, progress=False, grid=TINY, name="tiny")


def test_tiny_measure_is_a_valid_complete_profile(tiny_profile):
    p = tiny_profile
    assert set(OPS) <= set(p.ops) and set(REQUIRED_LINKS) <= set(p.links)
    assert p.kind == "measured" and p.device == "cpu" and p.interference >= 1.0
    assert p.meta["compute_threads"] >= 1 and p.meta["nprocs"] == 2 and p.meta["gloo"] is True
    assert "all_to_all_single" in p.meta["method"] and p.meta["grid"] == "tiny"
    for op, m in p.ops.items():
        assert m.points and all(pt["p10_s"] <= pt["median_s"] <= pt["p90_s"] for pt in m.points), op
        assert m.fit_err_pct is not None and len(p.meta["fit_errors"][op]) == 2
    net = p.links["net"]
    assert set(net.pairs) == {"0->1", "1->0"} and net.bw_Bps > 0 and net.latency_s >= 0
    assert [pt["nbytes"] for pt in net.points] == list(TINY.link_bytes)
    assert 0 <= p.meta["interference"]["per_rank"][0]["comm_outlasted_frac"] <= 1
    assert set(p.corun_by_ranks) == {"2", "3"} and min(p.corun_by_ranks.values()) >= 1.0
    assert set(p.sync_s) == set(p.allreduce_sync_s) == {"2", "3"}


def test_host_tables_cover_two_ranks_per_core_unless_the_grid_says():
    cores = os.cpu_count() or 1
    assert Grid("g").max_host_ranks() == max(2, 2 * cores)
    assert Grid("g", host_ranks=3).max_host_ranks() == 3


def test_tiny_profile_round_trips_through_json(tiny_profile, tmp_path):
    path = tiny_profile.save(tmp_path / "tiny.json")
    back = load_profile(path)
    assert back.to_dict() == json.loads(json.dumps(tiny_profile.to_dict()))
    assert back.op("spmm_fwd", **SMALL) == pytest.approx(tiny_profile.op("spmm_fwd", **SMALL))


def test_fitted_times_are_positive_and_grow_with_size(tiny_profile):
    for op in OPS:
        small, large = tiny_profile.op(op, **SMALL), tiny_profile.op(op, **LARGE)
        assert 0 < small < large, op
    for link in tiny_profile.links.values():
        assert 0 < link.seconds(1024) < link.seconds(64 << 20)


def test_time_fn_orders_its_statistics():
    med, p10, p90 = time_fn(lambda: sum(range(1000)), "cpu", warmup=1, reps=5, budget_s=1.0)
    assert 0 < p10 <= med <= p90


def test_time_fn_keeps_each_output_alive_until_the_next_call_returns():
    # an epoch keeps an op's output for the backward pass: the allocator must not get it back
    # before the next call has allocated its own (see time_fn)
    import weakref

    class Out:
        pass

    alive_during_call = []
    last = [None]

    def fn():
        alive_during_call.append(last[0] is not None and last[0]() is not None)
        out = Out()
        last[0] = weakref.ref(out)
        return out

    time_fn(fn, "cpu", warmup=1, reps=4, budget_s=1.0, cold=False)
    assert alive_during_call[0] is False and all(alive_during_call[1:])


def test_interference_is_clamped_at_one_and_says_so():
    rep = {"rank": 0, "alone_s": (1, 1, 1), "overlap_s": (0.9, 0.9, 0.9), "comm_bytes_per_peer": 1,
           "comm_outlasted_frac": 1.0}
    s = interference_summary([{**rep, "ratios": [0.9, 0.95, 0.97]}])
    assert s["factor"] == 1.0 and s["clamped"] and s["raw_median"] == pytest.approx(0.95)
    s = interference_summary([{**rep, "ratios": [1.5, 1.7]}, {**rep, "rank": 1, "ratios": [1.6]}])
    assert s["factor"] == pytest.approx(1.6) and not s["clamped"] and s["p10"] <= 1.6 <= s["p90"]


def test_corun_factor_is_the_even_share_that_does_the_same_work():
    from adaqp.runtime.profiling.ranks import corun_factor

    # one rank alone on a core (1x), two sharing the other (2x each): 2 cores' worth of work for
    # 3 ranks, i.e. 1.5x each if shared evenly - in every round, whichever rank held the core
    assert corun_factor([[1.0, 2.0, 2.0], [2.0, 1.0, 2.0], [2.0, 2.0, 1.0]]) == pytest.approx(1.5)
    # ratios[rank][round]; the median over the rounds: one round's spell (3x) does not move it
    assert corun_factor([[1.0, 1.0, 3.0], [1.0, 1.0, 3.0]]) == pytest.approx(1.0)
    assert corun_factor([[1.1, 1.2, 3.0], [1.1, 1.2, 3.0]]) == pytest.approx(1.2)
    assert corun_factor([[0.9, 0.95], [0.95, 0.9]]) == 1.0  # faster together is noise: at least 1


def test_bundled_cpu_2core_profile():
    p = load_profile("cpu-2core")
    assert (p.name, p.kind, p.device) == ("cpu-2core", "measured", "cpu")
    assert p.meta["nprocs"] == 2 and p.meta["grid"] == "full" and p.meta["compute_threads"] == 1
    assert "micro-benchmarks" in p.meta["method"] and "spmm_fwd" in p.meta["op_definitions"]
    assert p.interference >= 1.0 and p.links["net"].pairs
    from adaqp.costmodel.profile import BUNDLED_DIR

    assert (BUNDLED_DIR / "cpu-2core.json").stat().st_size < 200_000


def test_show_prints_the_tables(capsys):
    assert main(["profile", "--show", "cpu-2core"]) == 0
    out = capsys.readouterr().out
    assert "spmm_fwd" in out and "allreduce" in out and "Interference" in out


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"schema": "adaqp.profile", "version": 1, '
                                     '"name": "x", "kind": "measured", "device": "cpu", "ops": [], "links": {}}'])
def test_show_refuses_a_corrupt_file_with_one_line(tmp_path, capsys, content):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main(["profile", "--show", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("adaqp profile: error:") and len(err.splitlines()) == 1


def test_cli_refuses_bad_requests_before_measuring(tmp_path, capsys):
    import torch

    assert main(["profile", "--out", str(tmp_path / "p.txt")]) == 2
    assert main(["profile"]) == 2
    assert main(["profile", "--nprocs", "1", "--out", str(tmp_path / "p.json")]) == 2
    if not torch.cuda.is_available():
        assert main(["profile", "--device", "cuda", "--out", str(tmp_path / "p.json")]) == 2
        assert "no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


# ---- measure_shapes: a workload's own sizes merged into a profile -------------------------------

def test_measure_shapes_merges_points_and_answers_them(tiny_profile):
    from adaqp.runtime.profiling.profiler import measure_shapes

    shapes = {"spmm_fwd": [dict(rows=1500, nnz=7001, width=48)],
              "relu": [dict(rows=3000, width=40, elements=120_000)],
              "gemm_fwd": [dict(rows=2000, in_dim=300, out_dim=32)]}
    p = measure_shapes(tiny_profile, shapes, progress=False, reps=3, budget_s=0.05, note="unit test")
    assert p.name == tiny_profile.name and p.links == tiny_profile.links
    for op, sizes in shapes.items():
        before, after = tiny_profile.ops[op].points, p.ops[op].points
        assert len(after) == len(before) + 1
        new = [pt for pt in after if all(pt[k] == v for k, v in sizes[0].items())]
        assert len(new) == 1 and new[0]["median_s"] > 0
        # the refit model answers the measured size near its own measurement
        asked = p.op(op, **sizes[0])
        assert asked == pytest.approx(new[0]["median_s"], rel=0.6), op
        assert p.meta["fit_errors"][op] != tiny_profile.meta["fit_errors"][op] or p.ops[op] != tiny_profile.ops[op]
    for op in set(OPS) - set(shapes):
        assert p.ops[op] is tiny_profile.ops[op]
    entry = p.meta["measured_for"][-1]
    assert entry["workload"] == "unit test" and entry["sizes"] == {op: 1 for op in shapes}
    assert entry["threads"] == tiny_profile.meta["compute_threads"]
    # measuring the same size again replaces its point (a size given twice is timed once)
    again = measure_shapes(p, {"relu": shapes["relu"] * 2}, progress=False, reps=3, budget_s=0.05, note="again")
    assert len(again.ops["relu"].points) == len(p.ops["relu"].points)
    assert [e["workload"] for e in again.meta["measured_for"]] == ["unit test", "again"]


def test_a_size_is_timed_once_per_round_and_keeps_the_median_of_the_rounds(tiny_profile, monkeypatch):
    from adaqp.runtime.profiling import profiler

    calls = []
    fake = iter([0.003, 0.001, 0.002])  # one median per round

    def timed(setup, sizes, device, grid, bar=None):
        calls.append(grid.reps)
        m = next(fake)
        return [{**s, "elements": s["rows"] * s["width"], "median_s": m, "p10_s": m / 2, "p90_s": m * 2} for s in sizes]

    monkeypatch.setattr(profiler, "_measure_points", timed)
    p = profiler.measure_shapes(tiny_profile, {"relu": [dict(rows=3000, width=40)]}, progress=False, reps=9,
                                note="rounds", rounds=3)
    assert calls == [3, 3, 3]  # the reps split between the rounds
    pt = [q for q in p.ops["relu"].points if q["rows"] == 3000 and q["width"] == 40]
    assert pt == [{"rows": 3000, "width": 40, "elements": 120_000, "median_s": 0.002, "p10_s": 0.0005, "p90_s": 0.006}]
    assert p.meta["measured_for"][-1]["timing"]["rounds"] == 3


def test_measure_shapes_refuses_bad_requests(tiny_profile):
    from adaqp.runtime.profiling.profiler import measure_shapes
    from adaqp.errors import AdaqpInputError

    with pytest.raises(AdaqpInputError, match="unknown op"):
        measure_shapes(tiny_profile, {"conv": [dict(rows=1)]}, progress=False)
    with pytest.raises(AdaqpInputError, match="lack nnz"):
        measure_shapes(tiny_profile, {"spmm_fwd": [dict(rows=10, width=4)]}, progress=False)
    with pytest.raises(AdaqpInputError, match="spec-derived"):
        measure_shapes(load_profile("h100"), {"relu": [dict(rows=10, width=4)]}, device="cuda", progress=False)


def test_merge_points_replaces_identical_sizes():
    from adaqp.runtime.profiling.profiler import merge_points

    old = [dict(rows=10, width=4, elements=40, median_s=1.0), dict(rows=20, width=4, elements=80, median_s=2.0)]
    new = [dict(rows=10, width=4, elements=40, median_s=1.5)]
    assert merge_points(old, new) == [old[1], new[0]]


def test_exact_csr_has_exactly_the_edges_asked():
    import numpy as np

    from adaqp.runtime.profiling.profiler import exact_csr
    from adaqp.runtime.profiling.ranks import random_csr

    for rows, nnz in ((100, 257), (100, 30), (50, 200)):
        ip, ix, v = exact_csr(rows, nnz)
        assert ip[-1] == nnz == len(ix) == len(v) and len(ip) == rows + 1 and (ix < rows).all()
        assert all((np.diff(ix[a:b]) >= 0).all() for a, b in zip(ip[:-1], ip[1:]))
    assert all((a == b).all() for a, b in zip(exact_csr(50, 200), random_csr(50, 200)))


def test_full_grid_is_wide_and_affordable():
    from adaqp.runtime.profiling.profiler import estimate_grid_s, full_grid

    g = full_grid()
    assert max(w for _, _, w in g.spmm) >= 2048 and max(i for _, i, _ in g.gemm) >= 4096
    assert {o for _, _, o in g.gemm} >= {16, 512} and max(w for _, w in g.elementwise) >= 2048
    est = sum(estimate_grid_s(g, load_profile("cpu-2core")).values())
    assert est < 300  # seconds of compute benchmarks on the bundled 2-core machine
