"""Fitting measured timings to the models a :class:`~adaqp.costmodel.profile.HardwareProfile` holds.

Pure functions (numpy + scipy, no torch): the profiler measures, these turn medians into models.

* Compute ops: non-negative least squares of the median seconds on the op's linear features
  (:data:`profile.OP_FEATURES`). Each row is divided by its measured time, so the fit minimises *relative*
  error: unweighted, the largest sizes would own the fit and small sizes (the ones the latency
  term matters for) would come out wrong by multiples.
* When a straight line is wrong somewhere (max relative error above a threshold) and one size
  feature dominates the op, a log-log interpolation over that feature is a candidate too.
* ``nearest`` (measured points scaled by the linear model's work, see ``OpModel``) is a candidate
  whenever there are three points or more.
* LayerNorm and the send-buffer copy also try their line with a per-row term
  (:func:`candidate_features`).
* Candidates are compared on their *leave-one-size-out* error (:func:`leave_one_out_errors`):
  each measured size predicted by the same kind of model refit without it. In-sample error says
  nothing about sizes between or beyond the measured ones (interpolation is exact on its knots);
  leave-one-out does, the grid's end sizes testing extrapolation. The candidate with the smallest
  median wins, among those whose max is within ``WORST_RATIO`` of the smallest max (a model
  right between sizes and wildly off beyond them is not kept); ties keep the simpler model
  (line, then log-log, then nearest).
* Links: the same weighted nnls on ``[1, nbytes]`` gives latency and inverse bandwidth.

Fit errors are reported as ``(median, max)`` of ``|predicted / measured - 1|`` in percent; for
compute ops they are the leave-one-size-out errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

import numpy as np
from scipy.optimize import nnls

from adaqp.costmodel.profile import FEATURES, OP_FEATURES, SIZE_KEYS, LinkModel, OpModel

LOGLOG_THRESHOLD_PCT = 25.0
# a feature "dominates" when its term carries at least this share of the linear model's time at
# the median point: only then does one axis describe the op well enough to interpolate along it
DOMINANT_SHARE = 0.8
# a link whose time does not grow with size over the range measured still needs a finite bandwidth
MAX_BW_BPS = 1e15


def feature_matrix(features: Sequence[str], points: Iterable[Mapping[str, float]]) -> np.ndarray:
    """Rows = points, columns = ``features`` evaluated on each point's sizes."""
    return np.array([[float(FEATURES[f](p)) for f in features] for p in points], dtype=np.float64)


def rel_errors_pct(pred: np.ndarray, meas: np.ndarray) -> tuple[float, float]:
    """(median, max) of |pred/meas - 1| in percent."""
    e = np.abs(np.asarray(pred, float) / np.asarray(meas, float) - 1.0) * 100.0
    return float(np.median(e)), float(np.max(e))


def nnls_relative(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative ``c`` minimising ``sum(((X c - y) / y)^2)``."""
    X, y = np.asarray(X, float), np.asarray(y, float)
    if np.any(y <= 0):
        raise ValueError("measured times must be > 0 to weight them")
    # column scaling keeps nnls well conditioned when features span 1 .. 1e10
    scale = np.abs(X).max(axis=0)
    scale[scale == 0] = 1.0
    c, _ = nnls((X / scale) / y[:, None], np.ones_like(y))
    return c / scale


def fit_linear(features: Sequence[str], points: Sequence[Mapping[str, float]],
               y: Sequence[float]) -> tuple[np.ndarray, tuple[float, float]]:
    """Coefficients over ``features`` and their fit error (median, max %)."""
    X = feature_matrix(features, points)
    y = np.asarray(y, float)
    c = nnls_relative(X, y)
    return c, rel_errors_pct(X @ c, y)


def dominant_feature(features: Sequence[str], coef: Sequence[float],
                     points: Sequence[Mapping[str, float]]) -> str | None:
    """The one size feature that carries the op's time, or None when no single one does."""
    sized = [f for f in features if f != "1"]
    if len(sized) == 1:
        return sized[0]
    X = feature_matrix(sized, points)
    c = np.array([coef[list(features).index(f)] for f in sized])
    terms = np.median(X * c, axis=0)
    total = terms.sum()
    if total <= 0:
        return None
    i = int(np.argmax(terms))
    return sized[i] if terms[i] / total >= DOMINANT_SHARE else None


def _isotonic(y: np.ndarray) -> np.ndarray:
    """Pool-adjacent-violators: the closest non-decreasing sequence (equal weights).
    Noise must not make a bigger size predict a shorter time."""
    blocks: list[list[float]] = []  # [sum, count]
    for v in y:
        blocks.append([float(v), 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, n = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += n
    return np.concatenate([np.full(int(n), s / n) for s, n in blocks])


def loglog_points(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Knots for log-log interpolation: unique positive x (sorted), the median y at each,
    made non-decreasing in log space."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = (x > 0) & (y > 0)
    x, y = x[keep], y[keep]
    xs = np.unique(x)
    ly = np.array([np.median(np.log(y[x == v])) for v in xs])
    return xs, np.exp(_isotonic(ly))


def _loglog_predict(xs, ys, feature: str, points) -> np.ndarray:
    model = OpModel((feature,), (), kind="loglog", xs=tuple(xs), ys=tuple(ys))
    return np.array([model.seconds(**p) for p in points])


def fit_loglog(feature: str, points: Sequence[Mapping[str, float]],
               y: Sequence[float]) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Knots over one feature and their *leave-one-out* error: each interior size predicted from
    the knots of the other sizes. Interpolating through the knots is exact in-sample, so the
    in-sample error would say nothing about sizes between the measured ones; the two end sizes
    count in-sample (left out, they would test an extrapolation no one asked for)."""
    x = feature_matrix([feature], points)[:, 0]
    y = np.asarray(y, float)
    xs, ys = loglog_points(x, y)
    if len(xs) < 3:
        raise ValueError(f"loglog over {feature!r} needs at least three distinct sizes")
    pred = _loglog_predict(xs, ys, feature, points)
    for v in xs[1:-1]:
        out = x == v
        kx, ky = loglog_points(x[~out], y[~out])
        pred[out] = _loglog_predict(kx, ky, feature, [p for p, o in zip(points, out) if o])
    return xs, ys, rel_errors_pct(pred, y)


def fit_nearest(features: Sequence[str], coef: Sequence[float], points: Sequence[Mapping[str, float]],
                y: Sequence[float]) -> tuple[OpModel, tuple[float, float]] | None:
    """The ``nearest`` model over ``points`` with the line's size terms (``features``, ``coef``)
    as work, and its leave-one-size-out error (each size predicted from the others, the work
    coefficients refit without it); None when there are too few points or no positive work term."""
    sized = [(f, float(c)) for f, c in zip(features, coef) if f != "1"]
    if len(points) < 3 or not any(c > 0 for _, c in sized):
        return None
    pts = tuple({**p, "median_s": float(v)} for p, v in zip(points, y))
    model = OpModel(tuple(f for f, _ in sized), tuple(c for _, c in sized), kind="nearest", points=pts)
    err = _loo(model, features, list(points), y)
    if not np.isfinite(err[0]):
        return None
    return replace(model, fit_err_pct=err[1]), err


# Ops whose time has a per-row part the schema's features leave out (LayerNorm reduces each row,
# the send-buffer gather copies row by row): their line is also tried with a ``rows`` term.
ROW_TERM_OPS = ("layernorm", "copy")


def candidate_features(op: str, points: Sequence[Mapping[str, float]] = ()) -> list[tuple[str, ...]]:
    """The linear feature sets :func:`fit_op` tries for ``op``: the schema's (:data:`OP_FEATURES`), and
    for :data:`ROW_TERM_OPS` the same plus ``rows`` when every point has a row count."""
    base = tuple(OP_FEATURES[op])
    out = [base]
    if op in ROW_TERM_OPS and "rows" not in base and points and all("rows" in p for p in points):
        out.append(base + ("rows",))
    return out


# A candidate whose worst leave-one-size-out error is this many times the best candidate's worst is
# not chosen, however small its median: a log-log end slope extended past a cache step can be
# right between measured sizes and off by 20x beyond them.
WORST_RATIO = 4.0


def fit_op(op: str, points: Sequence[Mapping[str, float]], y: Sequence[float],
           threshold_pct: float = LOGLOG_THRESHOLD_PCT) -> tuple[OpModel, tuple[float, float]]:
    """Fit one op; returns the model (``fit_err_pct`` = its max error) and its (median, max)
    leave-one-size-out error.

    For each feature set of :func:`candidate_features`: the line, log-log (only if the line's
    in-sample max error exceeds ``threshold_pct`` and one feature dominates) and ``nearest`` (the
    line's size terms as work) are each scored by their leave-one-size-out errors (see
    :func:`leave_one_out_errors`). The smallest median wins among the candidates whose max is
    within :data:`WORST_RATIO` of the smallest max; a tie keeps the earlier, simpler one. With
    fewer than three sizes only the line is fitted, and its error is in-sample."""
    cands = []
    for features in candidate_features(op, points):
        cands.append(_fit_line_or_loglog(op, points, y, threshold_pct, features))
        cands.append(fit_nearest(features, fit_linear(features, points, y)[0], points, y))
    return _pick([c for c in cands if c is not None])


def _pick(cands):
    """The candidate ``(model, (median, max))`` with the smallest median among those whose max is
    within ``WORST_RATIO`` of the smallest max (the first on a tie)."""
    worst = min(c[1][1] for c in cands)
    ok = [c for c in cands if c[1][1] <= WORST_RATIO * worst] or cands
    return min(ok, key=lambda c: c[1][0])


def _fit_line_or_loglog(op, points, y, threshold_pct, features=None):
    """The line over ``features`` (default: the op's, :data:`OP_FEATURES`), or log-log where it wins by
    the rule of :func:`fit_op`; the model and its leave-one-size-out (median, max) error."""
    features = tuple(features or OP_FEATURES[op])
    coef, in_sample = fit_linear(features, points, y)
    best = OpModel(tuple(features), tuple(float(c) for c in coef))
    err = _loo(best, features, points, y)
    if not np.isfinite(err[0]):  # too few sizes to leave one out: the in-sample error
        err = in_sample
    best = (replace(best, fit_err_pct=err[1]), err)
    if in_sample[1] > threshold_pct:
        f = dominant_feature(features, coef, points)
        if f is not None:
            xs, ys = loglog_points(feature_matrix([f], points)[:, 0], y)
            if len(xs) >= 3:
                loglog = OpModel((f,), (), kind="loglog", xs=tuple(map(float, xs)), ys=tuple(map(float, ys)))
                lerr = _loo(loglog, features, points, y)
                return _pick([best, (replace(loglog, fit_err_pct=lerr[1]), lerr)])
    return best


# ---- leave one size out -------------------------------------------------------------------------

def size_key(p: Mapping) -> tuple:
    """A point's sizes as a hashable key: points with equal keys measured the same shape."""
    return tuple((k, float(p[k])) for k in SIZE_KEYS if k in p)


def _sizes_only(p: Mapping) -> dict:
    return {k: p[k] for k in SIZE_KEYS if k in p}


def _refit(kind: str, line: Sequence[str], features: Sequence[str], points, y) -> OpModel | None:
    """A model of ``kind`` over ``features`` fitted to ``points`` (``line``: the op's linear
    features, whose size terms are ``nearest``'s work); None where too few remain to fit it."""
    if kind == "loglog":
        xs, ys = loglog_points(feature_matrix(features, points)[:, 0], y)
        if len(xs) < 2:
            return None
        return OpModel(tuple(features), (), kind="loglog", xs=tuple(map(float, xs)), ys=tuple(map(float, ys)))
    if kind == "linear":
        return OpModel(tuple(features), tuple(float(c) for c in fit_linear(features, points, y)[0]))
    coef = fit_linear(line, points, y)[0]
    sized = [(f, float(c)) for f, c in zip(line, coef) if f != "1"]
    if not points or not any(c > 0 for _, c in sized):
        return None
    pts = tuple({**_sizes_only(p), "median_s": float(v)} for p, v in zip(points, y))
    return OpModel(tuple(f for f, _ in sized), tuple(c for _, c in sized), kind="nearest", points=pts)


def _loo(model: OpModel, line: Sequence[str], points: Sequence[Mapping],
         y: Sequence[float]) -> tuple[float, float]:
    """(median, max) % error of each measured size predicted by ``model``'s kind refit without
    it (log-log: without every point of the same feature value, the size it interpolates over);
    nan when fewer than three sizes are measured."""
    y = np.asarray(y, float)
    if model.kind == "loglog":
        keys = [float(v) for v in feature_matrix(model.features, points)[:, 0]]
    else:
        keys = [size_key(p) for p in points]
    groups: dict = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    if len(groups) < 3:
        return float("nan"), float("nan")
    pred = np.full(len(y), np.nan)
    for idx in groups.values():
        out = set(idx)
        keep = [i for i in range(len(y)) if i not in out]
        m = _refit(model.kind, line, model.features, [points[i] for i in keep], y[keep])
        if m is None:  # too few left for this kind: the model fitted on all points answers
            m = model
        for i in idx:
            pred[i] = m.seconds(**_sizes_only(points[i]))
    return rel_errors_pct(pred, y)


def leave_one_out_errors(op: str, points: Sequence[Mapping[str, float]],
                         model: OpModel | None = None) -> tuple[float, float]:
    """(median, max) % of ``|predicted / measured - 1|`` over ``points`` (sizes and
    ``median_s``), each size predicted by the model refit without it: ``model``'s kind (a stored
    profile's model), or the kind :func:`fit_op` picks for these points. The error a prediction at
    a size that was not measured can expect; (nan, nan) with fewer than three sizes."""
    pts = [p for p in points if isinstance(p, Mapping) and p.get("median_s", 0) > 0]
    y = [float(p["median_s"]) for p in pts]
    if len({size_key(p) for p in pts}) < 3:
        return float("nan"), float("nan")
    if model is None:
        model = fit_op(op, pts, y)[0]
    line = model.features if model.kind == "linear" else next(
        (f for f in candidate_features(op, pts) if set(model.features) <= set(f)), OP_FEATURES[op])
    try:
        return _loo(model, line, pts, y)
    except KeyError:  # points that lack a size the model reads
        return float("nan"), float("nan")


def fit_link(nbytes: Sequence[float], seconds: Sequence[float]) -> tuple[float, float, tuple[float, float]]:
    """(latency_s, bw_Bps, (median, max) error %) of ``seconds = latency + nbytes / bw``."""
    nb = np.asarray(nbytes, float)
    y = np.asarray(seconds, float)
    X = np.stack([np.ones_like(nb), nb], axis=1)
    lat, inv_bw = nnls_relative(X, y)
    bw = 1.0 / inv_bw if inv_bw > 1.0 / MAX_BW_BPS else MAX_BW_BPS
    return float(lat), float(bw), rel_errors_pct(lat + nb / bw, y)


def link_model(nbytes: Sequence[float], seconds: Sequence[float], points: Sequence[dict] = (),
               pairs: Mapping[str, tuple[float, float]] | None = None
               ) -> tuple[LinkModel, tuple[float, float]]:
    """A LinkModel (``fit_err_pct`` = max error) and its (median, max) error."""
    lat, bw, err = fit_link(nbytes, seconds)
    return LinkModel(lat, bw, fit_err_pct=err[1], points=tuple(points), pairs=dict(pairs or {})), err
