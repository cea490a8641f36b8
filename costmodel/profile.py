"""``HardwareProfile``: measured (or spec-derived) coefficients, stored as versioned JSON data.

A profile holds, per *op*, a model that turns sizes into seconds, and per *link*, a latency and
a bandwidth. Compute ops use a non-negative linear model over named size features (e.g.
``spmm_fwd`` = c0 + c1·nnz·width + c2·rows·width); when a straight line is wrong over the measured
range, an op may instead use log-log interpolation over one feature. Every fit keeps its measured
points (median and spread) and its fit error, so a reader can see how far to trust it.

Sizes an op is evaluated with (names are fixed; see :data:`FEATURES`): ``rows``, ``width``,
``nnz``, ``in_dim``, ``out_dim``, ``elements``, ``nbytes``.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from adaqp.errors import AdaqpInputError, require
from adaqp.io import read_json, write_json

SCHEMA, VERSION = "adaqp.profile", 1
KINDS = ("measured", "spec-derived")

# feature name -> how to compute it from the sizes an op is called with
FEATURES = {
    "1": lambda s: 1.0,
    "elements": lambda s: s["elements"],
    "rows": lambda s: s["rows"],
    "nnz_x_width": lambda s: s["nnz"] * s["width"],
    "rows_x_width": lambda s: s["rows"] * s["width"],
    "flops": lambda s: s["rows"] * s["in_dim"] * s["out_dim"],
    "gemm_io": lambda s: s["rows"] * (s["in_dim"] + s["out_dim"]),
    "nbytes": lambda s: s["nbytes"],
}
QUANT_BITS = (1, 2, 4, 8)
# The ops a complete profile defines, with the features of their linear model.
OPS: dict[str, tuple[str, ...]] = {
    "spmm_fwd": ("1", "nnz_x_width", "rows_x_width"),
    "spmm_bwd": ("1", "nnz_x_width", "rows_x_width"),
    "gemm_fwd": ("1", "flops", "gemm_io"),
    "gemm_bwd": ("1", "flops", "gemm_io"),
    "relu": ("1", "elements"),
    "dropout": ("1", "elements"),
    "layernorm": ("1", "elements"),
    "copy": ("1", "elements"),  # gathering / packing fp32 rows into a send buffer
    "adam": ("1", "elements"),  # one optimiser step over this many parameters
    **{f"quantize_b{b}": ("1", "elements", "rows") for b in QUANT_BITS},
    **{f"dequantize_b{b}": ("1", "elements", "rows") for b in QUANT_BITS},
}
# Ops a profile may define; one that does not is costed by the op named here at the same sizes.
# gemm_bwd_w: the input layer's backward, dW and db only (the features need no gradient); its
# one GEMM has the forward's multiply-adds, so gemm_fwd stands in for it where it is not measured.
OPTIONAL_OPS: dict[str, str] = {"gemm_bwd_w": "gemm_fwd"}
OP_FEATURES: dict[str, tuple[str, ...]] = {**OPS, "gemm_bwd_w": ("1", "flops", "gemm_io")}
# Links: latency + bytes / bandwidth. "net" is the transport between ranks as measured (per
# ordered pair where measured), "allreduce" the collective's effective figures. "net@K" (optional)
# is "net" measured with K ranks on the host at once (Gloo's loopback throughput per rank changes
# with K: ~0.9 GB/s with 2 ranks sharing an H200, ~1.2 with 4); bytes are all a rank sends.
LINKS = ("net", "allreduce", "h2d_pinned", "d2h_pinned", "h2d_pageable", "d2h_pageable")
REQUIRED_LINKS = ("net", "allreduce")


def _link_name_ok(name: str) -> bool:
    kind, _, k = name.partition("@")
    return name in LINKS or (kind in ("net", "staged") and k.isdigit() and int(k) >= 2)


@dataclass(frozen=True)
class OpModel:
    """seconds = sum(coef_i * feature_i(sizes)), log-log interpolation over one feature, or
    ``nearest``: the measured points closest in log-size space, each scaled to the query by the
    ratio of the op's work ``sum(coef_i * feature_i)`` (coef: the linear fit's size terms).

    Why ``nearest``: on a CPU the cost per element of one op changes several-fold with size (cache
    levels, fresh allocations past the allocator's cache), so one straight line over 1e4 .. 1e7
    elements misses somewhere by a multiple; a measured point of the same regime, scaled by a
    few percent of work, does not."""

    features: tuple[str, ...]
    coef: tuple[float, ...]
    kind: str = "linear"  # or "loglog"
    xs: tuple[float, ...] = ()  # loglog: feature values ...
    ys: tuple[float, ...] = ()  # ... and measured seconds
    fit_err_pct: float | None = None
    points: tuple[dict, ...] = ()

    def __post_init__(self) -> None:
        require(self.kind in ("linear", "loglog", "nearest"),
                f"op model kind must be linear, loglog or nearest, got {self.kind!r}")
        for f in self.features:
            require(f in FEATURES, f"unknown feature {f!r}; known: {', '.join(FEATURES)}")
        # the measured points are read as numbers by queries and the coverage check: check them once here
        require(all(isinstance(p, Mapping) and all(_size_ok(p[k]) for k in SIZE_KEYS if k in p) and
                    ("median_s" not in p or _positive_number(p["median_s"])) for p in self.points),
                "measured points must be objects whose sizes are finite numbers >= 0 and median_s > 0")
        if self.kind in ("linear", "nearest"):
            require(len(self.coef) == len(self.features), "coef and features differ in length")
            require(all(math.isfinite(c) and c >= 0 for c in self.coef), "coefficients must be finite and >= 0")
            require(self.kind == "linear" or (len(self.points) >= 1 and any(c > 0 for c in self.coef) and
                                              all("median_s" in p for p in self.points)),
                    "nearest needs measured points with median_s > 0 and a positive work coefficient")
            if self.kind == "nearest":  # every query scales by the points' work: each must have its sizes
                try:
                    _work(self, self.points)
                except KeyError as e:
                    raise AdaqpInputError(f"a measured point lacks the size {e} its features need") from None
        else:
            require(len(self.features) == 1 and len(self.xs) == len(self.ys) >= 2,
                    "loglog needs one feature and at least two points")
            require(all(x > 0 for x in self.xs) and all(y > 0 for y in self.ys), "loglog points must be > 0")
            require(list(self.xs) == sorted(self.xs), "loglog xs must be increasing")

    def seconds(self, **sizes):
        """The op's seconds at ``sizes`` (scalars or per-rank arrays): the model's, except where
        a measured point lies within :data:`MEASURED_REL` of the query in every size, which gives
        its own median (scaled by the model's ratio between the two sizes): ``profile --for``
        measures a workload's exact sizes, and a fitted line can miss a measured point by tens of
        percent where the per-element cost changes with size."""
        t = self._model_seconds(sizes)
        return measured_seconds(self, sizes, t) if self.points else t

    @cached_property
    def _measured(self) -> dict:
        """What :func:`measured_seconds` asks of the points on every call, built once: the size
        keys every point holds (none unless every point has a median), the points' sizes as an
        array per key tuple, and the model's own seconds at each point."""
        ok = all("median_s" in p for p in self.points)
        keys = set.intersection(*(set(p) for p in self.points)) if ok and self.points else set()
        return {"keys": keys, "arrays": {}, "at": {}}

    def _model_seconds(self, sizes):
        if self.kind == "linear":  # sizes may be numpy arrays: the cost model is vectorised
            t = sum(c * np.asarray(FEATURES[f](sizes), dtype=np.float64) for c, f in zip(self.coef, self.features))
            return float(t) if np.ndim(t) == 0 else t
        if self.kind == "nearest":
            return nearest_seconds(self, sizes)
        x = np.asarray(FEATURES[self.features[0]](sizes), dtype=np.float64)
        lx, ly = np.log(self.xs), np.log(self.ys)
        logx = np.log(np.maximum(x, 1e-300))
        # inside the measured range interpolate; beyond it extend the end segments' slopes
        lo_slope = (ly[1] - ly[0]) / (lx[1] - lx[0])
        hi_slope = (ly[-1] - ly[-2]) / (lx[-1] - lx[-2])
        y = np.interp(logx, lx, ly)
        y = np.where(logx < lx[0], ly[0] + lo_slope * (logx - lx[0]), y)
        y = np.where(logx > lx[-1], ly[-1] + hi_slope * (logx - lx[-1]), y)
        out = np.where(x > 0, np.exp(y), 0.0)
        return float(out) if out.ndim == 0 else out

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"kind": self.kind, "features": list(self.features)}
        if self.kind in ("linear", "nearest"):
            d["coef"] = list(self.coef)
        else:
            d["xs"], d["ys"] = list(self.xs), list(self.ys)
        d["fit_err_pct"] = self.fit_err_pct
        d["points"] = list(self.points)
        return d

    @classmethod
    def from_dict(cls, d: Mapping, where: str) -> "OpModel":
        try:
            return cls(features=tuple(d["features"]), coef=tuple(float(c) for c in d.get("coef", ())),
                       kind=d.get("kind", "linear"), xs=tuple(map(float, d.get("xs", ()))),
                       ys=tuple(map(float, d.get("ys", ()))), fit_err_pct=d.get("fit_err_pct"),
                       points=tuple(d.get("points", ())))
        except (KeyError, TypeError, ValueError, AdaqpInputError) as e:
            raise AdaqpInputError(f"{where}: {e}") from None


def _positive_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _size_ok(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


NEAREST_K = 3
SIZE_KEYS = ("rows", "width", "nnz", "in_dim", "out_dim", "elements", "nbytes")


def nearest_seconds(m: OpModel, sizes: Mapping[str, Any]):
    """``nearest`` evaluation, vectorised over the query (sizes may be arrays)."""
    keys = [k for k in SIZE_KEYS if k in sizes and all(k in p for p in m.points)]
    if "rows" in keys and "width" in keys and "elements" in keys:
        keys.remove("elements")  # implied by the other two: would count the same distance twice
    require(keys, f"nearest: the query's sizes {sorted(sizes)} share no key with the measured points")
    used = {k: v for k, v in sizes.items() if k in SIZE_KEYS}
    arrays = dict(zip(used, np.broadcast_arrays(*(np.asarray(v, np.float64) for v in used.values()))))
    shape = np.shape(next(iter(arrays.values())))
    flat = {k: v.reshape(-1) for k, v in arrays.items()}
    q = np.stack([np.log(np.maximum(flat[k], 1.0)) for k in keys], axis=-1)
    pts = np.log(np.maximum(np.array([[p[k] for k in keys] for p in m.points], np.float64), 1.0))
    work_pts, work_q = _work(m, m.points), _work(m, [flat])[0]
    d = np.sqrt(((q[:, None, :] - pts[None, :, :]) ** 2).sum(-1))  # [Q, N]
    k = min(NEAREST_K, len(m.points))
    idx = np.argsort(d, axis=1)[:, :k]
    dk = np.take_along_axis(d, idx, 1)
    w = 1.0 / (dk + 1e-3) ** 2
    y = np.array([p["median_s"] for p in m.points])[idx] * (work_q[:, None] / work_pts[idx])
    out = (w * y).sum(1) / w.sum(1)
    out = np.where(work_q > 0, out, 0.0).reshape(shape)
    return float(out) if out.ndim == 0 else out


MEASURED_REL = 0.02  # sizes this close to a measured point are that point (profile --for merges them so)


def measured_seconds(m: OpModel, sizes: Mapping[str, Any], model_s):
    """``model_s`` with each query that lies within :data:`MEASURED_REL` of a measured point (in
    every size the point and the query share) replaced by that point's median, scaled by the
    model's ratio between the query and the point (1 at the point itself)."""
    cache = m._measured
    keys = tuple(k for k in SIZE_KEYS if k in sizes and k in cache["keys"])
    if not keys:
        return model_s
    if keys not in cache["arrays"]:
        cache["arrays"][keys] = np.array([[p[k] for k in keys] for p in m.points], np.float64)
    pts = cache["arrays"][keys]  # [N, K]
    arrays = np.broadcast_arrays(*(np.asarray(sizes[k], np.float64) for k in keys))
    q = np.stack([a.reshape(-1) for a in arrays], axis=-1)  # [Q, K]
    rel = np.abs(q[:, None, :] - pts[None, :, :]) / np.maximum(np.abs(pts[None, :, :]), 1.0)
    close = (rel <= MEASURED_REL).all(-1)  # [Q, N]
    if not close.any():
        return model_s
    hit = np.flatnonzero(close.any(1))
    j = np.argmin(np.where(close, rel.max(-1), np.inf), axis=1)[hit]  # the closest measured point
    for i in set(j.tolist()):
        if i not in cache["at"]:
            cache["at"][i] = float(m._model_seconds(m.points[i]))
    at_pt = np.array([cache["at"][i] for i in j])
    out = np.array(np.broadcast_to(np.asarray(model_s, np.float64), arrays[0].shape), dtype=np.float64).reshape(-1)
    scale = np.where(at_pt > 0, out[hit] / np.where(at_pt > 0, at_pt, 1.0), 1.0)
    out[hit] = np.array([m.points[i]["median_s"] for i in j]) * scale
    out = out.reshape(arrays[0].shape)
    return float(out) if out.ndim == 0 else out


def _work(m: OpModel, points) -> np.ndarray:
    """The op's size-dependent work at each point (vectorised when a point holds arrays)."""
    return np.array([sum(c * np.asarray(FEATURES[f](p), np.float64) for c, f in zip(m.coef, m.features))
                     for p in points])


@dataclass(frozen=True)
class LinkModel:
    """seconds = latency_s + nbytes / bw_Bps; ``pairs`` optionally refines it per ordered pair."""

    latency_s: float
    bw_Bps: float
    fit_err_pct: float | None = None
    points: tuple[dict, ...] = ()
    pairs: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # "s->r": (lat, bw)

    def __post_init__(self) -> None:
        require(math.isfinite(self.latency_s) and self.latency_s >= 0, "latency_s must be >= 0")
        require(math.isfinite(self.bw_Bps) and self.bw_Bps > 0, "bw_Bps must be > 0")

    def seconds(self, nbytes):
        t = np.where(np.asarray(nbytes) > 0, self.latency_s + np.asarray(nbytes, dtype=np.float64) / self.bw_Bps, 0.0)
        return float(t) if t.ndim == 0 else t

    def to_dict(self) -> dict:
        return {"latency_s": self.latency_s, "bw_Bps": self.bw_Bps, "fit_err_pct": self.fit_err_pct,
                "points": list(self.points), "pairs": {k: list(v) for k, v in self.pairs.items()}}

    @classmethod
    def from_dict(cls, d: Mapping, where: str) -> "LinkModel":
        try:
            return cls(float(d["latency_s"]), float(d["bw_Bps"]), d.get("fit_err_pct"),
                       tuple(d.get("points", ())),
                       {k: (float(v[0]), float(v[1])) for k, v in d.get("pairs", {}).items()})
        except (KeyError, TypeError, ValueError, IndexError, AdaqpInputError) as e:
            raise AdaqpInputError(f"{where}: {e}") from None


@dataclass(frozen=True)
class HardwareProfile:
    name: str
    kind: str  # measured | spec-derived
    device: str  # "cpu", "cuda"
    meta: Mapping[str, Any]  # host, device name, cores, versions, date, how it was made
    ops: Mapping[str, OpModel]
    links: Mapping[str, LinkModel]
    # compute runs this many times slower while communication / copies overlap it (>= 1)
    interference: float = 1.0
    # compute runs this many times slower when every rank sharing the device computes at once
    # (memory bandwidth and caches are shared; ops are profiled one rank at a time) (>= 1)
    corun: float = 1.0
    # extra seconds every synchronising step (an exchange, the all-reduce) costs when k ranks
    # time-share this host's CPU cores, by k (as a string, JSON keys): a rank blocked on a message
    # waits for its peer to be scheduled, then to be scheduled itself. Measured by
    # ``runtime.profiling.ranks.measure_sync``; for a GPU, the same for k ranks sharing it through the
    # host-staged exchange (``runtime.profiling.gpu``); empty for GPUs profiled from their specs.
    sync_s: Mapping[str, float] = field(default_factory=dict)
    # the same for the gradient all-reduce (a chain of dependent steps: each waits for its peers)
    allreduce_sync_s: Mapping[str, float] = field(default_factory=dict)
    # how many times slower a rank computes while k ranks of the host compute at once, by k (as a
    # string): memory bandwidth shared and, past the core count, cores time-sliced. Measured by
    # ``runtime.profiling.ranks.measure_corun``; where absent, ``corun`` x max(1, k x threads / cores).
    corun_by_ranks: Mapping[str, float] = field(default_factory=dict)
    # the sync delays by the compute between two synchronising steps: {"exchange" | "allreduce":
    # {k: [[gap_s, extra_s], ...] sorted by gap}}; where present for k, ``sync(k, step, gap_s)``
    # interpolates it (the delay grows with the compute a rank did since its last step).
    sync_by_gap: Mapping[str, Mapping[str, Sequence]] = field(default_factory=dict)
    # what a CPU rank's resident memory adds to the live bytes the memory model counts, measured
    # on this host (``experiments.memory_constants``): {"allocator_slack": >= 1,
    # "rank_overhead_bytes": >= 0}; where absent, ``costmodel.memory``'s constants stand in
    cpu_memory: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require(self.kind in KINDS, f"profile kind must be one of {KINDS}, got {self.kind!r}")
        missing = [o for o in OPS if o not in self.ops]
        require(not missing, f"profile {self.name!r} lacks op(s): {', '.join(missing)}")
        missing = [k for k in REQUIRED_LINKS if k not in self.links]
        require(not missing, f"profile {self.name!r} lacks link(s): {', '.join(missing)}")
        unknown = [k for k in self.links if not _link_name_ok(k)]
        require(not unknown, f"profile {self.name!r} has unknown link(s): {', '.join(unknown)}")
        for f in ("interference", "corun"):
            v = getattr(self, f)
            require(isinstance(v, (int, float)) and math.isfinite(v) and v >= 1.0,
                    f"profile {self.name!r}: {f} must be a number >= 1, got {v!r}")
        for k, v in self.corun_by_ranks.items():
            require(str(k).isdigit() and int(k) >= 2 and isinstance(v, (int, float)) and math.isfinite(v) and v > 0,
                    f"profile {self.name!r}: corun_by_ranks maps rank counts >= 2 to factors > 0, got {k!r}: {v!r}")
        for k, v in [*self.sync_s.items(), *self.allreduce_sync_s.items()]:
            require(str(k).isdigit() and int(k) >= 1 and isinstance(v, (int, float)) and math.isfinite(v) and v >= 0,
                    f"profile {self.name!r}: sync_s maps rank counts to seconds >= 0, got {k!r}: {v!r}")
        for step, table in self.sync_by_gap.items():
            require(step in ("exchange", "allreduce") and isinstance(table, Mapping) and all(
                str(k).isdigit() and int(k) >= 2 and len(pts) >= 1 and all(
                    len(pt) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in pt)
                    for pt in pts) and [pt[0] for pt in pts] == sorted(pt[0] for pt in pts)
                for k, pts in table.items()),
                f"profile {self.name!r}: sync_by_gap maps exchange/allreduce to {{ranks: [[gap_s, extra_s], "
                "...]}} with numbers >= 0, gaps increasing")
        bounds = {"allocator_slack": 1.0, "rank_overhead_bytes": 0.0}
        for k, v in self.cpu_memory.items():
            require(k in bounds and isinstance(v, (int, float)) and math.isfinite(v) and v >= bounds[k],
                    f"profile {self.name!r}: cpu_memory holds allocator_slack (>= 1) and rank_overhead_bytes "
                    f"(>= 0), got {k!r}: {v!r}")

    def sync(self, ranks: int, step: str = "exchange", gap_s: float | None = None) -> float:
        """``sync_s`` (``step="allreduce"``: ``allreduce_sync_s``) for ``ranks`` ranks sharing the
        host: the measured figure, the largest one's scaled by ranks / its ranks beyond the table,
        0 below it (or with no table). With ``gap_s`` (the compute since the rank's last
        synchronising step) and ``sync_by_gap`` measured for ``ranks``: interpolated in the gap,
        clamped to the measured gaps' figures outside them."""
        pts = self.sync_by_gap.get(step, {}).get(str(ranks)) if gap_s is not None else None
        if pts:
            return float(np.interp(gap_s, [p[0] for p in pts], [p[1] for p in pts]))
        table = self.sync_s if step == "exchange" else self.allreduce_sync_s
        if not table or ranks <= 1:
            return 0.0
        table = {int(k): float(v) for k, v in table.items()}
        if ranks in table:
            return table[ranks]
        top = max(table)
        return table[top] * ranks / top if ranks > top else 0.0

    def with_corun(self, ranks: int, factor: float) -> "HardwareProfile":
        """This profile with ``corun_by_ranks[ranks]`` set to ``factor`` (a co-run slowdown measured
        at a workload's own step)."""
        return replace(self, corun_by_ranks={**self.corun_by_ranks, str(ranks): float(factor)})

    def core_load(self, running: int) -> float | None:
        """Threads per core with ``running`` ranks computing at once (``meta.compute_threads``
        each, over ``meta.cores``); None for a profile that states no core count."""
        cores = self.meta.get("cores")
        if not cores:
            return None
        return running * float(self.meta.get("compute_threads") or 1) / float(cores)

    def net_for(self, ranks: int) -> LinkModel:
        """The "net" link measured with ``ranks`` ranks on the host ("net@K"), else "net"."""
        return self.links.get(f"net@{ranks}", self.links["net"])

    def op(self, name: str, **sizes):
        for calls in _RECORDERS:
            calls.append((name, sizes))
        return self.ops[self.costed_as(name)].seconds(**sizes)

    def costed_as(self, name: str) -> str:
        """The op whose model costs ``name``: itself, or for an optional op this profile lacks,
        the op that stands in for it (:data:`OPTIONAL_OPS`)."""
        return name if name in self.ops else OPTIONAL_OPS.get(name, name)

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "version": VERSION, "name": self.name, "kind": self.kind,
                "device": self.device, "meta": dict(self.meta), "interference": self.interference,
                "corun": self.corun, "sync_s": dict(self.sync_s),
                "allreduce_sync_s": dict(self.allreduce_sync_s), "corun_by_ranks": dict(self.corun_by_ranks),
                **({"sync_by_gap": {k: dict(v) for k, v in self.sync_by_gap.items()}} if self.sync_by_gap else {}),
                **({"cpu_memory": dict(self.cpu_memory)} if self.cpu_memory else {}),
                "ops": {k: v.to_dict() for k, v in self.ops.items()},
                "links": {k: v.to_dict() for k, v in self.links.items()}}

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "profile") -> "HardwareProfile":
        require(isinstance(d, Mapping), f"{source}: not a JSON object")
        require(d.get("schema") == SCHEMA, f"{source}: not an adaqp profile (schema {d.get('schema')!r})")
        require(d.get("version") == VERSION, f"{source}: profile version {d.get('version')!r} is not "
                                             f"supported (this adaqp reads version {VERSION})")
        try:
            ops = {k: OpModel.from_dict(v, f"{source}: op {k}") for k, v in d["ops"].items()}
            links = {k: LinkModel.from_dict(v, f"{source}: link {k}") for k, v in d["links"].items()}
            return cls(str(d["name"]), str(d["kind"]), str(d["device"]), dict(d.get("meta", {})), ops, links,
                       float(d.get("interference", 1.0)), float(d.get("corun", 1.0)),
                       {str(k): float(v) for k, v in dict(d.get("sync_s", {})).items()},
                       {str(k): float(v) for k, v in dict(d.get("allreduce_sync_s", {})).items()},
                       {str(k): float(v) for k, v in dict(d.get("corun_by_ranks", {})).items()},
                       {str(st): {str(k): [list(map(float, pt)) for pt in pts] for k, pts in dict(t).items()}
                        for st, t in dict(d.get("sync_by_gap", {})).items()},
                       {str(k): float(v) for k, v in dict(d.get("cpu_memory", {})).items()})
        except KeyError as e:
            raise AdaqpInputError(f"{source}: missing field {e}") from None
        except AdaqpInputError as e:
            msg = str(e)
            raise AdaqpInputError(msg if msg.startswith(source) else f"{source}: {msg}") from None
        except (TypeError, ValueError, AttributeError) as e:  # a field of the wrong JSON type (after: ours are ValueErrors)
            raise AdaqpInputError(f"{source}: malformed field: {e}") from None

    def save(self, path: str | os.PathLike) -> Path:
        return write_json(path, self.to_dict())


# Active ``record_ops`` lists: every ``HardwareProfile.op`` call appends (op, sizes) to each.
_RECORDERS: list[list] = []


@contextmanager
def record_ops():
    """Collect every op evaluation made inside the block as ``(op, sizes)``; sizes are what the
    caller passed (scalars or per-rank arrays). The shape-coverage check and ``profile --for``
    use it to learn exactly which op sizes a prediction asks for, from the code that asks."""
    calls: list = []
    _RECORDERS.append(calls)
    try:
        yield calls
    finally:
        _RECORDERS.remove(calls)


BUNDLED_DIR = Path(__file__).with_name("profiles")


def load_profile(name_or_path: str | os.PathLike) -> HardwareProfile:
    """A bundled profile by name (``costmodel/profiles/NAME.json``) or a profile file."""
    p = Path(name_or_path)
    if not p.suffix and not p.exists():
        p = BUNDLED_DIR / f"{name_or_path}.json"
        if not p.exists():
            names = ", ".join(sorted(f.stem for f in BUNDLED_DIR.glob("*.json")))
            raise AdaqpInputError(f"unknown profile {name_or_path!r}; bundled: {names}")
    return HardwareProfile.from_dict(read_json(p), source=str(p))


def check_fits(profile: HardwareProfile, cluster) -> None:
    """Refuse a profile measured on another kind of device than the cluster's."""
    cpu_cluster, cpu_profile = cluster.device == "cpu", profile.device == "cpu"
    require(cpu_cluster == cpu_profile,
            f"profile {profile.name!r} describes a {profile.device} device but cluster {cluster.name!r} "
            f"runs on {cluster.device}; pass a matching --profile")
