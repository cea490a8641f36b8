"""Fitting measured timings to the models a :class:`~adaqp.costmodel.profile.HardwareProfile` holds.

Pure functions (numpy + scipy, no torch): the profiler measures, these turn medians into models.

* Compute ops: non-negative least squares of the median seconds on the op's linear features
  (:data:`profile.OPS`). Each row is divided by its measured time, so the fit minimises *relative*
  error: unweighted, the largest sizes would own the fit and small sizes (the ones the latency
  term matters for) would come out wrong by multiples.
* When a straight line is still wrong somewhere (max relative error above a threshold) and one
  size feature dominates the op, a log-log interpolation over that feature is used instead, if
  its leave-one-out error is smaller (its in-sample error is 0 by construction).
* ``nearest`` (measured points scaled by the linear model's work, see ``OpModel``) competes on its
  leave-one-out error too: each point predicted from the others. The model with the smallest
  (leave-one-out, or in-sample for the line) median error is kept.
* Links: the same weighted nnls on ``[1, nbytes]`` gives latency and inverse bandwidth.

Fit errors are reported as ``(median, max)`` of ``|predicted / measured - 1|`` in percent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy.optimize import nnls

from adaqp.costmodel.profile import FEATURES, OPS, LinkModel, OpModel

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
    """The ``nearest`` model over ``points`` with the line's size terms as work, and its
    leave-one-out error; None when there are too few points or no positive work term."""
    sized = [(f, float(c)) for f, c in zip(features, coef) if f != "1"]
    if len(points) < 3 or not any(c > 0 for _, c in sized):
        return None
    pts = [{**p, "median_s": float(v)} for p, v in zip(points, y)]
    fs, cs = tuple(f for f, _ in sized), tuple(c for _, c in sized)
    pred = []
    for i, p in enumerate(pts):
        others = OpModel(fs, cs, kind="nearest", points=tuple(pts[:i] + pts[i + 1:]))
        pred.append(others.seconds(**{k: v for k, v in p.items() if not k.endswith("_s")}))
    err = rel_errors_pct(np.array(pred), np.asarray(y, float))
    return OpModel(fs, cs, kind="nearest", fit_err_pct=err[1], points=tuple(pts)), err


def fit_op(op: str, points: Sequence[Mapping[str, float]], y: Sequence[float],
           threshold_pct: float = LOGLOG_THRESHOLD_PCT) -> tuple[OpModel, tuple[float, float]]:
    """Fit one op; returns the model (``fit_err_pct`` = its max error) and (median, max) error.

    Linear first; log-log only if the linear max error exceeds ``threshold_pct``, one feature
    dominates, and log-log's leave-one-out max error beats the line's in-sample one; then
    ``nearest`` replaces the winner when its leave-one-out median error is smaller."""
    line = fit_linear(OPS[op], points, y)
    best, err = _fit_line_or_loglog(op, points, y, threshold_pct, line)
    near = fit_nearest(OPS[op], line[0], points, y)
    if near is not None and near[1][0] < err[0]:
        return near
    return best, err


def _fit_line_or_loglog(op, points, y, threshold_pct, line=None):
    """The line, or log-log where it beats the line; ``line``: ``fit_linear``'s answer if known."""
    features = OPS[op]
    coef, err = line if line is not None else fit_linear(features, points, y)
    best = OpModel(tuple(features), tuple(float(c) for c in coef), fit_err_pct=err[1])
    if err[1] > threshold_pct:
        f = dominant_feature(features, coef, points)
        if f is not None:
            try:
                xs, ys, lerr = fit_loglog(f, points, y)
            except ValueError:
                return best, err
            if lerr[1] < err[1]:
                return OpModel((f,), (), kind="loglog", xs=tuple(map(float, xs)),
                               ys=tuple(map(float, ys)), fit_err_pct=lerr[1]), lerr
    return best, err


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
