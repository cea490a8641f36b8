"""costmodel.fit on synthetic timings with known coefficients."""

import numpy as np
import pytest

from adaqp.costmodel import fit
from adaqp.costmodel.profile import HardwareProfile, LinkModel


def _spmm_points():
    return [dict(rows=r, nnz=r * d, width=w) for r in (1000, 10_000, 100_000)
            for d in (4, 25) for w in (16, 64, 256)]


def _noisy(y, rel, seed=0):
    rng = np.random.default_rng(seed)
    return np.asarray(y) * (1 + rng.uniform(-rel, rel, len(y)))


def test_linear_recovers_known_coefficients_exactly():
    pts = _spmm_points()
    true = np.array([5e-6, 4e-10, 2e-9])  # 5 us + 0.4 ns per nnz*width + 2 ns per rows*width
    y = fit.feature_matrix(("1", "nnz_x_width", "rows_x_width"), pts) @ true
    coef, (med, mx) = fit.fit_linear(("1", "nnz_x_width", "rows_x_width"), pts, y)
    assert np.allclose(coef, true, rtol=1e-6)
    assert mx < 1e-4


def test_linear_with_noise_stays_close_and_small_sizes_count():
    pts = [dict(elements=n) for n in np.logspace(3, 7, 12).astype(int)]
    y = _noisy(2e-5 + 1e-9 * np.array([p["elements"] for p in pts]), 0.05)
    coef, (med, mx) = fit.fit_linear(("1", "elements"), pts, y)
    # relative weighting: the 20 us latency (negligible at 1e7 elements) is still found
    assert coef[0] == pytest.approx(2e-5, rel=0.15)
    assert coef[1] == pytest.approx(1e-9, rel=0.1)
    assert mx < 12 and med <= mx


def test_nnls_keeps_coefficients_non_negative():
    pts = [dict(elements=n) for n in (1e3, 1e4, 1e5, 1e6)]
    y = np.array([1e-6, 1e-5, 1e-4, 1e-3])  # pure proportional: the intercept must not go negative
    coef, _ = fit.fit_linear(("1", "elements"), pts, y)
    assert (coef >= 0).all() and coef[1] == pytest.approx(1e-9, rel=1e-6)


def test_rel_errors():
    assert fit.rel_errors_pct([1.1, 2.0, 2.0], [1.0, 2.0, 4.0]) == pytest.approx((10.0, 50.0))


def test_loglog_chosen_for_a_curve_a_line_cannot_follow():
    # a cache knee: the cost per element grows 4x from in-cache to out-of-cache sizes
    n = np.logspace(3, 7, 17)
    y = 1e-10 * n * (1 + 3 * n / (n + 1e5)) + 1e-7
    pts = [dict(rows=int(v), width=1, elements=float(v)) for v in n]
    model, (med, mx) = fit.fit_op("relu", pts, y)
    assert model.kind == "loglog" and model.features == ("elements",)
    _, (_, lin_max) = fit.fit_linear(("1", "elements"), pts, y)
    assert lin_max > fit.LOGLOG_THRESHOLD_PCT and mx < 10 and med <= mx  # leave-one-out
    assert model.fit_err_pct == pytest.approx(mx)
    assert model.seconds(elements=1e5) == pytest.approx(1e-10 * 1e5 * 2.5 + 1e-7, rel=1e-6)  # a knot
    assert list(model.xs) == sorted(model.xs) and len(model.xs) == 17


def test_loglog_error_is_leave_one_out_not_in_sample():
    n = np.logspace(3, 7, 9)
    y = np.where(n < 1e5, 1e-10 * n, 4e-10 * n)  # a sharp step: the point past it is unpredictable
    pts = [dict(elements=float(v)) for v in n]
    _, _, (med, mx) = fit.fit_loglog("elements", pts, y)
    assert mx > 50 and med < 1


def test_linear_kept_when_it_fits():
    pts = [dict(rows=int(v), width=1, elements=float(v)) for v in np.logspace(3, 7, 9)]
    y = 3e-6 + 2e-10 * np.array([p["elements"] for p in pts])
    model, _ = fit.fit_op("relu", pts, y)
    assert model.kind == "linear" and model.coef[1] == pytest.approx(2e-10, rel=1e-6)


def test_loglog_knots_are_monotone_and_deduplicated():
    xs, ys = fit.loglog_points([1, 2, 2, 4, 8], [1.0, 3.0, 5.0, 2.0, 9.0])
    assert list(xs) == [1, 2, 4, 8]
    assert all(b >= a for a, b in zip(ys, ys[1:]))  # noise never makes more work cheaper


def test_no_loglog_when_no_feature_dominates():
    pts = [dict(rows=r, nnz=r * d, width=w) for r, d, w in
           ((1000, 4, 16), (1000, 100, 16), (100_000, 1, 64), (100_000, 40, 64), (30_000, 10, 128))]
    X = fit.feature_matrix(("nnz_x_width", "rows_x_width"), pts)
    y = X @ [1e-9, 4e-9]
    y[2] *= 3  # one point a line cannot reach
    assert fit.dominant_feature(("1", "nnz_x_width", "rows_x_width"), (0, 1e-9, 4e-9), pts) is None
    assert fit.fit_op("spmm_fwd", pts, y)[0].kind != "loglog"


def test_link_fit_recovers_latency_and_bandwidth():
    nb = np.array([1024 * 4 ** k for k in range(9)], float)
    y = 50e-6 + nb / 2.5e9
    lat, bw, (med, mx) = fit.fit_link(nb, y)
    assert lat == pytest.approx(50e-6, rel=1e-6) and bw == pytest.approx(2.5e9, rel=1e-6)
    lat, bw, (med, mx) = fit.fit_link(nb, _noisy(y, 0.05, seed=3))
    assert lat == pytest.approx(50e-6, rel=0.15) and bw == pytest.approx(2.5e9, rel=0.1)
    model, err = fit.link_model(nb, y, pairs={"0->1": (lat, bw)})
    assert isinstance(model, LinkModel) and model.pairs["0->1"] == (lat, bw)
    assert model.seconds(1e6) == pytest.approx(50e-6 + 1e6 / 2.5e9, rel=1e-5)


def test_link_fit_without_growth_still_gives_a_finite_bandwidth():
    lat, bw, _ = fit.fit_link([1e3, 1e4, 1e5], [1e-4, 1e-4, 1e-4])
    assert lat == pytest.approx(1e-4) and 0 < bw <= fit.MAX_BW_BPS


def test_fitted_models_make_a_valid_profile(tmp_path):
    from adaqp.costmodel.profile import OPS

    pts = [dict(rows=r, width=w, elements=r * w, nnz=4 * r, in_dim=w, out_dim=w)
           for r in (100, 1000, 10_000) for w in (16, 128)]
    ops = {}
    for op, feats in OPS.items():
        y = fit.feature_matrix(feats, pts) @ np.full(len(feats), 1e-9) + 1e-6
        ops[op], _ = fit.fit_op(op, pts, y)
    link, _ = fit.link_model([1e3, 1e6], [1e-4, 1e-3])
    prof = HardwareProfile("synthetic", "measured", "cpu", {}, ops, {"net": link, "allreduce": link})
    prof.save(tmp_path / "p.json")
    assert HardwareProfile.from_dict(prof.to_dict()).op("spmm_fwd", rows=10, nnz=40, width=8) > 0


# ---- leave one size out --------------------------------------------------------------------------

def test_leave_one_out_is_zero_on_a_line_and_catches_a_step():
    pts = [dict(rows=int(v), width=1, elements=float(v)) for v in np.logspace(3, 7, 9)]
    y = 3e-6 + 2e-10 * np.array([p["elements"] for p in pts])
    line = [{**p, "median_s": float(t)} for p, t in zip(pts, y)]
    med, mx = fit.leave_one_out_errors("relu", line)
    assert med < 1e-6 and mx < 1e-6
    # a step in cost per element: the point past it cannot be predicted from the others
    step = [{**p, "median_s": float(t * (4 if p["elements"] > 1e5 else 1))} for p, t in zip(pts, y)]
    model, (fmed, fmx) = fit.fit_op("relu", pts, [p["median_s"] for p in step])
    med, mx = fit.leave_one_out_errors("relu", step, model)
    assert (med, mx) == pytest.approx((fmed, fmx)) and mx > 50
    assert fit.leave_one_out_errors("relu", step[:2]) != fit.leave_one_out_errors("relu", step[:2])  # nan: too few


def test_leave_one_out_refits_the_stored_kind():
    from adaqp.costmodel.profile import load_profile

    p = load_profile("cpu-2core")
    for op in ("spmm_fwd", "relu", "adam"):
        m = p.ops[op]
        med, mx = fit.leave_one_out_errors(op, m.points, m)
        assert 0 < med <= mx


def test_fit_op_picks_a_model_that_generalises_over_a_wide_grid():
    # SpMM whose cost per unit of work falls with width (wider rows stream better) and a latency:
    # the model chosen must predict left-out sizes well and extrapolate in width sanely
    def cost(r, n, w):
        return 5e-6 + n * w * 1e-9 * (1 + 2 / np.sqrt(w)) + r * w * 2e-9

    pts = [dict(rows=r, nnz=r * d, width=w) for r in (1000, 10_000, 30_000) for d in (4, 16, 50)
           for w in (16, 64, 256, 512, 1024, 2048)]
    y = _noisy([cost(p["rows"], p["nnz"], p["width"]) for p in pts], 0.03)
    model, (med, mx) = fit.fit_op("spmm_fwd", pts, y)
    assert med < 10 and mx < 40
    wide = model.seconds(rows=3000, nnz=30_000, width=3703)  # CiteSeer's input width, beyond the grid
    assert wide == pytest.approx(cost(3000, 30_000, 3703), rel=0.2)


def test_fit_op_does_not_keep_a_model_that_explodes_beyond_the_grid():
    # a cache step just below the largest size: log-log's end slope extended past it is ~20x off
    n = np.array([1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6, 3e6, 7e6, 1.3e7, 2.6e7])
    y = 1e-10 * n * np.where(n > 1e7, 16, 1) + 1e-6
    pts = [dict(rows=int(v), width=1, elements=float(v)) for v in n]
    loglog = fit.OpModel(("elements",), (), kind="loglog", xs=tuple(n), ys=tuple(y))
    assert fit.leave_one_out_errors("relu", [{**p, "median_s": t} for p, t in zip(pts, y)], loglog)[1] > 500
    model, (_, mx) = fit.fit_op("relu", pts, y)
    assert model.kind != "loglog" and mx < 500


def test_layernorm_may_take_a_per_row_term():
    pts = [dict(rows=r, width=w, elements=r * w) for r in (1000, 10_000, 100_000) for w in (16, 256, 2048)
           if r * w <= 3e7]
    y = [2e-6 + 1e-9 * p["elements"] + 5e-8 * p["rows"] for p in pts]
    assert fit.candidate_features("layernorm", pts)[-1] == ("1", "elements", "rows")
    model, (med, mx) = fit.fit_op("layernorm", pts, y)
    assert "rows" in model.features and mx < 1
