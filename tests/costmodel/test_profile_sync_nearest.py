"""The profile's host-sync table and the ``nearest`` op model."""

import dataclasses

import numpy as np
import pytest

from adaqp.costmodel import fit
from adaqp.costmodel.profile import OpModel, load_profile
from adaqp.errors import AdaqpInputError


def test_sync_table_lookup_and_extrapolation():
    p = dataclasses.replace(load_profile("cpu-2core"), sync_s={"2": 0.001, "4": 0.004}, allreduce_sync_s={})
    assert p.sync(1) == 0.0 and p.sync(2) == 0.001 and p.sync(4) == 0.004
    assert p.sync(3) == 0.0  # not measured and below the largest entry: no guess
    assert p.sync(8) == pytest.approx(0.008)  # beyond the table: scaled by ranks
    assert p.to_dict()["sync_s"] == {"2": 0.001, "4": 0.004}
    q = dataclasses.replace(p, allreduce_sync_s={"2": 0.002})
    assert q.sync(2, "allreduce") == 0.002 and q.sync(2) == 0.001 and p.sync(2, "allreduce") == 0.0


@pytest.mark.parametrize("bad", [{"two": 0.1}, {"2": -1.0}, {"2": float("nan")}])
def test_sync_table_refuses_bad_entries(bad):
    with pytest.raises(AdaqpInputError):
        dataclasses.replace(load_profile("cpu-2core"), sync_s=bad)


def test_sync_by_gap_interpolates_in_the_compute_before_the_step_and_round_trips():
    from adaqp.costmodel.profile import HardwareProfile

    table = {"exchange": {"2": [[0.001, 0.0004], [0.005, 0.003]]}, "allreduce": {"2": [[0.001, 0.001]]}}
    p = dataclasses.replace(load_profile("cpu-2core"), sync_s={"2": 0.01}, sync_by_gap=table)
    assert p.sync(2, gap_s=0.003) == pytest.approx(0.0017)  # halfway between the measured gaps
    assert p.sync(2, gap_s=0.0) == 0.0004 and p.sync(2, gap_s=1.0) == 0.003  # clamped outside them
    assert p.sync(2) == 0.01  # no gap given: the plain table
    assert p.sync(3, gap_s=0.003) == pytest.approx(0.015)  # no entry for 3 ranks: the plain table, scaled
    assert p.sync(2, "allreduce", gap_s=0.1) == 0.001
    again = HardwareProfile.from_dict(p.to_dict())
    assert again.sync_by_gap == table and again.sync(2, gap_s=0.003) == pytest.approx(0.0017)


@pytest.mark.parametrize("bad", [{"wait": {"2": [[0.0, 0.1]]}}, {"exchange": {"2": [[0.1]]}},
                                 {"exchange": {"2": [[0.2, 0.1], [0.1, 0.1]]}}, {"exchange": {"1": [[0.0, 0.1]]}},
                                 {"exchange": {"2": [[0.0, -0.1]]}}])
def test_sync_by_gap_refuses_bad_tables(bad):
    with pytest.raises(AdaqpInputError):
        dataclasses.replace(load_profile("cpu-2core"), sync_by_gap=bad)


def _points():
    # per-element cost doubles past 1e5 elements: no straight line fits both regimes
    pts = []
    for rows in (1e3, 1e4, 1e5, 1e6):
        for width in (16, 64):
            e = rows * width
            pts.append({"rows": rows, "width": width, "elements": e, "median_s": e * (1e-9 if e < 1e5 else 2e-9)})
    return pts


def test_nearest_is_exact_on_measured_points_and_scales_by_work_between():
    pts = _points()
    m = OpModel(("elements",), (1.0,), kind="nearest", points=tuple(pts))
    for p in pts:
        assert m.seconds(rows=p["rows"], width=p["width"], elements=p["elements"]) == \
            pytest.approx(p["median_s"], rel=1e-3)
    # 2e6 and 4e6 elements sit among the slow points: 2 ns per element, vectorised over rows
    rows = np.array([62_500, 31_250])
    got = m.seconds(rows=rows, width=64, elements=rows * 64)
    assert got == pytest.approx([4e6 * 2e-9, 2e6 * 2e-9], rel=1e-2)


def test_fit_prefers_nearest_when_its_leave_one_out_error_is_lower():
    pts = _points()
    y = [p["median_s"] for p in pts]
    model, (med, _) = fit.fit_op("copy", [{k: v for k, v in p.items() if k != "median_s"} for p in pts], y)
    assert model.kind in ("nearest", "loglog", "linear")
    line, lerr = fit._fit_line_or_loglog("copy", pts, y, fit.LOGLOG_THRESHOLD_PCT)
    assert med <= lerr[0]  # never worse than what it replaced


def test_nearest_needs_points():
    with pytest.raises(AdaqpInputError):
        OpModel(("elements",), (1.0,), kind="nearest", points=())
