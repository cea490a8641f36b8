"""Shape coverage: measured ranges per op model, the extrapolations a prediction asks for, and the
warning line plus ``extrapolated`` key the predicting commands emit."""

import io
import json

import numpy as np
import pytest

from adaqp.cli.main import main
from adaqp.costmodel import coverage
from adaqp.costmodel import durations as D
from adaqp.costmodel.profile import OPS, HardwareProfile, LinkModel, OpModel, load_profile, record_ops

SMALL_SBM = "sbm:nodes=3000,classes=4,feat=16,deg=8,seed=1"


def _pt(median_s=1e-4, **sizes):
    return {**sizes, "median_s": median_s}


SPMM_POINTS = tuple(_pt(rows=r, nnz=r * 4, width=w) for r in (1000, 10_000) for w in (16, 64))


def _profile(spmm_points=SPMM_POINTS, device="cpu") -> HardwareProfile:
    """Zero-cost ops without points, except spmm_fwd: linear, measured at ``spmm_points``."""
    ops = {name: OpModel(f, tuple([0.0] * len(f))) for name, f in OPS.items()}
    ops["spmm_fwd"] = OpModel(OPS["spmm_fwd"], (1e-6, 1e-9, 1e-10), points=spmm_points)
    ops["spmm_bwd"] = OpModel(OPS["spmm_bwd"], (1e-6, 1e-9, 1e-10))
    links = {"net": LinkModel(1e-5, 1e9), "allreduce": LinkModel(1e-5, 1e9)}
    return HardwareProfile("narrow", "measured", device, {}, ops, links)


# ---- measured ranges, per model kind

def test_range_of_a_linear_model_is_each_size_key_over_its_points():
    m = OpModel(OPS["spmm_fwd"], (1e-6, 1e-9, 1e-10), points=SPMM_POINTS)
    assert coverage.measured_range(m) == {"rows": (1000, 10_000), "width": (16, 64), "nnz": (4000, 40_000)}


def test_range_of_a_nearest_model_ignores_timings_and_zero_sizes():
    pts = (_pt(2e-4, rows=0, in_dim=32, out_dim=8), _pt(3e-3, rows=500, in_dim=128, out_dim=64),
           _pt(1e-3, rows=4000, in_dim=64, out_dim=16))
    m = OpModel(("flops", "gemm_io"), (1e-9, 1e-10), kind="nearest", points=pts)
    assert coverage.measured_range(m) == {"rows": (500, 4000), "in_dim": (32, 128), "out_dim": (8, 64)}


def test_range_of_a_loglog_model_without_points_is_its_feature_from_xs():
    m = OpModel(("elements",), (), kind="loglog", xs=(1e3, 1e5, 1e7), ys=(1e-6, 1e-5, 1e-3))
    assert coverage.measured_range(m) == {"elements": (1e3, 1e7)}
    composite = OpModel(("nnz_x_width",), (), kind="loglog", xs=(1e4, 1e8), ys=(1e-5, 1e-1))
    assert coverage.measured_range(composite) == {"nnz_x_width": (1e4, 1e8)}


def test_range_of_a_loglog_model_with_points_adds_their_other_keys():
    pts = (_pt(rows=100, width=10, elements=1000), _pt(rows=1000, width=100, elements=1e5))
    m = OpModel(("elements",), (), kind="loglog", xs=(1e3, 1e5), ys=(1e-6, 1e-4), points=pts)
    assert coverage.measured_range(m) == {"rows": (100, 1000), "width": (10, 100), "elements": (1000, 1e5)}


def test_a_model_without_points_has_no_range_and_is_never_flagged():
    p = _profile()
    assert coverage.measured_range(p.ops["spmm_bwd"]) == {}
    assert coverage.extrapolations(p, [("spmm_bwd", {"rows": 1e9, "nnz": 1e12, "width": 1e5})]) == []


def test_bundled_measured_profile_ranges():
    p = load_profile("cpu-2core")
    r = coverage.measured_range(p.ops["spmm_fwd"])
    widths = [q["width"] for q in p.ops["spmm_fwd"].points]
    assert r["width"] == (min(widths), max(widths)) and r["width"][1] >= 2048 and r["rows"][0] < r["rows"][1]
    assert set(coverage.measured_range(p.ops["relu"])) >= {"elements"}


# ---- queries

def test_in_range_queries_give_nothing():
    p = _profile()
    calls = [("spmm_fwd", {"rows": 5000, "nnz": 20_000, "width": 32}),
             ("spmm_fwd", {"rows": np.array([1000, 10_000]), "nnz": np.array([4000, 40_000]), "width": 64}),
             # within the 5 % tolerance on both ends
             ("spmm_fwd", {"rows": 1000 / 1.04, "nnz": 40_000 * 1.04, "width": 64 * 1.04})]
    assert coverage.extrapolations(p, calls) == []
    just_past = [("spmm_fwd", {"rows": 5000, "nnz": 20_000, "width": 64 * 1.06})]
    assert [r["size"] for r in coverage.extrapolations(p, just_past)] == ["width"]


def test_zero_size_queries_do_not_count():
    p = _profile()
    calls = [("spmm_fwd", {"rows": 0, "nnz": 0, "width": 1433}),  # an op not run
             ("spmm_fwd", {"rows": np.array([0, 5000]), "nnz": np.array([0, 20_000]), "width": 32})]
    assert coverage.extrapolations(p, calls) == []


def test_out_of_range_query_gives_exactly_its_record():
    p = _profile()
    calls = [("spmm_fwd", {"rows": np.array([2000, 0, 3000]), "nnz": np.array([8000, 0, 12_000]), "width": 256}),
             ("spmm_fwd", {"rows": 2000, "nnz": 8000, "width": 1433}),
             ("relu", {"elements": 1e12})]  # relu has no measured points: not judged
    assert coverage.extrapolations(p, calls) == [
        {"op": "spmm_fwd", "size": "width", "asked": 1433, "measured": [16, 64]}]


def test_the_farthest_side_is_reported():
    p = _profile()
    # rows 100 is 10x below 1000; rows 15000 is 1.5x above 10000: the record names 100
    calls = [("spmm_fwd", {"rows": np.array([100, 15_000]), "nnz": np.array([8000, 8000]), "width": 32})]
    assert coverage.extrapolations(p, calls) == [
        {"op": "spmm_fwd", "size": "rows", "asked": 100, "measured": [1000, 10_000]}]


def test_composite_loglog_feature_is_computed_from_the_sizes():
    p = _profile()
    ops = dict(p.ops)
    ops["spmm_bwd"] = OpModel(("nnz_x_width",), (), kind="loglog", xs=(1e4, 1e8), ys=(1e-5, 1e-1))
    p = HardwareProfile(p.name, p.kind, p.device, {}, ops, p.links)
    inside = [("spmm_bwd", {"rows": 10, "nnz": 1e5, "width": 100})]
    assert coverage.extrapolations(p, inside) == []
    outside = [("spmm_bwd", {"rows": 10, "nnz": 1e7, "width": 100})]
    assert coverage.extrapolations(p, outside) == [
        {"op": "spmm_bwd", "size": "nnz_x_width", "asked": 1_000_000_000, "measured": [10_000, 100_000_000]}]


def test_warning_is_one_line_per_op_and_watch_collects_what_durations_ask():
    p = _profile()
    log = io.StringIO()
    with coverage.watch(p, log) as found:
        D.spmm_s(p, rows=np.array([500, 2000]), nnz=np.array([2000, 8000]), width=256)
        D.spmm_s(p, rows=2000, nnz=8000, width=32)
        assert found == []  # filled when the block ends
    assert found == [{"op": "spmm_fwd", "size": "rows", "asked": 500, "measured": [1000, 10_000]},
                     {"op": "spmm_fwd", "size": "width", "asked": 256, "measured": [16, 64]},
                     {"op": "spmm_fwd", "size": "nnz", "asked": 2000, "measured": [4000, 40_000]}]
    assert log.getvalue().splitlines() == [
        "adaqp: warning: spmm_fwd extrapolated: rows 500 outside measured 1000..10000, width 256 outside "
        "measured 16..64, nnz 2000 outside measured 4000..40000 (profile narrow)"]
    json.dumps(found)  # plain JSON values


def test_warn_extrapolated_takes_calls_and_a_log_function():
    p = _profile()
    with record_ops() as calls:
        D.spmm_s(p, rows=2000, nnz=8000, width=1433)
    lines = []
    assert coverage.warn_extrapolated(p, calls, lines.append) == [
        {"op": "spmm_fwd", "size": "width", "asked": 1433, "measured": [16, 64]}]
    assert lines == ["adaqp: warning: spmm_fwd extrapolated: width 1433 outside measured 16..64 (profile narrow)"]


def test_watch_checks_nothing_when_the_block_raises():
    p = _profile()
    log = io.StringIO()
    with pytest.raises(RuntimeError):
        with coverage.watch(p, log):
            D.spmm_s(p, rows=2000, nnz=8000, width=1433)
            raise RuntimeError("boom")
    assert log.getvalue() == ""


# ---- the commands that predict

def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("adaqp: warning:")]


@pytest.mark.parametrize("command", ["simulate", "estimate"])
def test_cli_warns_once_per_op_and_writes_extrapolated(command, tmp_path, capsys):
    # spmm_fwd measured up to width 64 only, for a model of width 256
    points = tuple(_pt(rows=r, nnz=n, width=w) for r, n in ((1, 1), (10 ** 7, 10 ** 9)) for w in (16, 64))
    prof = tmp_path / "narrow.json"
    _profile(points).save(prof)
    out = tmp_path / "out"
    assert main([command, SMALL_SBM, "--parts", "2", "--method", "random", "--profile", str(prof),
                 "--hidden", "256", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert _warnings(err) == [
        "adaqp: warning: spmm_fwd extrapolated: width 256 outside measured 16..64 (profile narrow)"]
    s = json.loads((out / "summary.json").read_text())
    assert s["extrapolated"] == [{"op": "spmm_fwd", "size": "width", "asked": 256, "measured": [16, 64]}]


def test_cli_in_range_writes_an_empty_list(tmp_path, capsys):
    points = tuple(_pt(rows=r, nnz=n, width=w) for r, n in ((1, 1), (10 ** 7, 10 ** 9)) for w in (16, 256))
    prof = tmp_path / "wide.json"
    _profile(points).save(prof)
    assert main(["estimate", SMALL_SBM, "--parts", "2", "--method", "random", "--profile", str(prof),
                 "--hidden", "256", "--out", str(tmp_path)]) == 0
    assert _warnings(capsys.readouterr().err) == []
    assert json.loads((tmp_path / "summary.json").read_text())["extrapolated"] == []


def test_plan_records_the_predicted_epochs_extrapolations(tmp_path, capsys):
    points = tuple(_pt(rows=r, nnz=n, width=w) for r, n in ((1, 1), (10 ** 7, 10 ** 9)) for w in (16, 64))
    prof = tmp_path / "narrow.json"
    _profile(points).save(prof)
    assert main(["plan", SMALL_SBM, "--parts", "2", "--method", "random", "--profile", str(prof),
                 "--hidden", "256", "--solver", "greedy", "--time-budget", "0.5x", "--out", str(tmp_path)]) == 0
    assert len(_warnings(capsys.readouterr().err)) == 1
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["extrapolated"] == [{"op": "spmm_fwd", "size": "width", "asked": 256, "measured": [16, 64]}]


def test_default_bundled_case_records_consistently(tmp_path, capsys):
    """cora on local-cpu (profile cpu-2core): whatever is flagged is well-formed and really outside."""
    assert main(["simulate", "cora", "--parts", "2", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["profile"] == "cpu-2core" and isinstance(s["extrapolated"], list)
    prof = load_profile("cpu-2core")
    for r in s["extrapolated"]:
        assert set(r) == {"op", "size", "asked", "measured"}
        lo, hi = coverage.measured_range(prof.ops[r["op"]])[r["size"]]
        assert r["measured"] == [lo, hi]
        assert r["asked"] < lo / coverage.TOLERANCE or r["asked"] > hi * coverage.TOLERANCE
    ops = list(dict.fromkeys(r["op"] for r in s["extrapolated"]))
    warned = _warnings(err)
    assert len(warned) == len(ops) and all(f" {op} extrapolated:" in w for op, w in zip(ops, warned))
    # cora's 1433 input features are within the widths cpu-2core measured
    assert not any(r["op"] == "spmm_fwd" and r["size"] == "width" for r in s["extrapolated"])
