"""GPU profiles derived op by op from the H200 measurement and datasheet ratios (``kind: "spec-derived"``).

These exist so that a what-if question ("how long on 8 A100s?") can be asked without the GPU.
The starting point is the bundled measured profile ``h200-measured`` (``adaqp profile --device
cuda`` on an NVIDIA H200, run by ``experiments/gpu_check.py`` on 2026-11-26; its raw output is
``experiments/results/h200-2026-11-26/profile.json``). Every op keeps the measured model kind,
feature set and measured points; only the size-dependent part of its time is scaled:

* memory-bound ops (SpMM, the elementwise ops, the gather copy, Adam, quantize/dequantize through
  the fused kernels) by ``H200 HBM bandwidth / target HBM bandwidth``;
* GEMMs: the ``flops`` term by ``H200 FP32 FLOP/s / target FP32 FLOP/s`` (PyTorch leaves TF32
  matmul off), the ``gemm_io`` term (bytes in and out) by the HBM ratio;
* the constant term (kernel launch, dispatcher, host-side work) is kept as measured.

A point-based model (``loglog``, ``nearest``, and the points every model keeps) is scaled point
by point: ``t' = t + max(t - launch, 0) * (ratio - 1)``, ``launch`` being the op's measured
constant (the linear fit's constant term when the model has none), ``ratio`` the work-weighted
ratio of its terms at that point; p10/p90 move by the same factor as the median. With ratio 1
every number is unchanged. The bundled profiles are linear in every op, as the solver's linear
model and compact LP need: an op the H200 fit models otherwise (a log-log interpolation, nearest
points) is first replaced by the non-negative line over its measured points (:func:`linearise`).
So the derived ``h200`` has the measured ops, those few as their lines.

Host links scale with the PCIe generation from the H200's measured pinned copies; pageable copies
add the host staging rate the H200 host measured; the Gloo endpoint ("net") and the Gloo
all-reduce are host software figures and are carried unchanged. Every figure a profile rests on
is in its ``meta``: datasheet figures (``meta.sources``), the measured profile it came from
(``meta.derived_from``), the ratio per op class (``meta.ratios``) and the method in words.

Regenerate the bundled files with ``python -m adaqp.costmodel.specs [OUT_DIR]``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from adaqp.cluster import PCIE_LANE_Bps
from adaqp.costmodel.fit import fit_linear
from adaqp.costmodel.profile import (BUNDLED_DIR, FEATURES, OPS, HardwareProfile, LinkModel, OpModel,
                                     load_profile)
from adaqp.errors import require

__all__ = ["GpuSpec", "GPUS", "REFERENCE", "MEMORY_BOUND", "COMPUTE_BOUND", "time_ratios", "derive_op",
           "linearise", "spec_profile", "write_bundled"]


@dataclass(frozen=True)
class GpuSpec:
    key: str  # profile name
    name: str
    datasheet: str
    memory: str
    hbm_Bps: float  # peak memory bandwidth
    fp32_flops: float  # peak FP32 (non-tensor-core) FLOP/s
    tf32_flops: float  # peak dense TF32 tensor-core FLOP/s (0: none)
    pcie_gen: int  # host interface, x16


GPUS = {g.key: g for g in (
    GpuSpec("v100", "NVIDIA Tesla V100 SXM2 (16/32 GB)", "NVIDIA Tesla V100 GPU Accelerator datasheet",
            "HBM2 16/32 GB", 900e9, 15.7e12, 0.0, 3),
    GpuSpec("a100", "NVIDIA A100 40GB SXM", "NVIDIA A100 Tensor Core GPU datasheet",
            "HBM2 40 GB", 1555e9, 19.5e12, 156e12, 4),
    GpuSpec("h100", "NVIDIA H100 SXM 80GB", "NVIDIA H100 Tensor Core GPU datasheet",
            "HBM3 80 GB", 3.35e12, 67e12, 494.5e12, 5),
    GpuSpec("h200", "NVIDIA H200 SXM 141GB", "NVIDIA H200 Tensor Core GPU datasheet",
            "HBM3e 141 GB", 4.8e12, 67e12, 494.5e12, 5),
)}

# The measured profile every GPU profile is derived from, and the datasheet entry of its device.
REFERENCE = "h200-measured"
REFERENCE_GPU = "h200"
REFERENCE_RESULTS = "experiments/results/h200-2026-11-26/"

# Op classes: which datasheet ratio scales each op's size-dependent time.
COMPUTE_BOUND = ("gemm_fwd", "gemm_bwd")
MEMORY_BOUND = tuple(op for op in OPS if op not in COMPUTE_BOUND)


def time_ratios(g: GpuSpec, ref: GpuSpec | None = None) -> dict[str, float]:
    """Time on ``g`` / time on the reference H200, per kind of work: ``hbm`` (bytes through device
    memory), ``fp32`` (GEMM FLOPs), ``pcie`` (host-link bytes), ``launch`` (constant terms)."""
    ref = ref or GPUS[REFERENCE_GPU]
    return {"hbm": ref.hbm_Bps / g.hbm_Bps, "fp32": ref.fp32_flops / g.fp32_flops,
            "pcie": PCIE_LANE_Bps[ref.pcie_gen] / PCIE_LANE_Bps[g.pcie_gen], "launch": 1.0}


def feature_ratio(op: str, feature: str, r: dict[str, float]) -> float:
    """The time ratio of one term of ``op``'s model: constant kept, GEMM FLOPs by FP32, else HBM."""
    if feature == "1":
        return r["launch"]
    return r["fp32"] if op in COMPUTE_BOUND and feature == "flops" else r["hbm"]


def _launch(op: str, m: OpModel) -> float:
    """The op's measured constant term: the model's, else the linear fit's over its points."""
    if "1" in m.features and m.kind != "loglog":
        return float(m.coef[m.features.index("1")])
    pts = [p for p in m.points if p.get("median_s", 0) > 0]
    try:
        coef, _ = fit_linear(OPS[op], pts, [p["median_s"] for p in pts])
    except (KeyError, ValueError):  # points without the op's sizes: no constant to keep
        return 0.0
    return float(coef[OPS[op].index("1")])


def _point_excess_ratio(op: str, m: OpModel, p: dict, r: dict[str, float]) -> float:
    """``ratio - 1`` for one measured point: the terms' ratios weighted by their share of the
    model's size-dependent time at that point (loglog: its one feature's ratio)."""
    if m.kind == "loglog":
        return feature_ratio(op, m.features[0], r) - 1.0
    terms = [(c * float(FEATURES[f](p)), feature_ratio(op, f, r)) for f, c in zip(m.features, m.coef) if f != "1"]
    work = sum(w for w, _ in terms)
    if work <= 0:  # no size-dependent term fitted: the op class's ratio
        return feature_ratio(op, "flops" if op in COMPUTE_BOUND else "elements", r) - 1.0
    return sum(w * (x - 1.0) for w, x in terms) / work


def _scale(t: float, launch: float, excess_ratio: float) -> float:
    return t + max(t - launch, 0.0) * excess_ratio


def derive_op(op: str, m: OpModel, r: dict[str, float]) -> OpModel:
    """``op``'s measured model ``m`` on a device whose time ratios to the measured one are ``r``."""
    launch = _launch(op, m)
    points = []
    for p in m.points:
        q = dict(p)
        if p.get("median_s", 0) > 0:
            t = float(p["median_s"])
            q["median_s"] = _scale(t, launch, _point_excess_ratio(op, m, p, r))
            for k in ("p10_s", "p90_s"):
                if k in p:
                    q[k] = float(p[k]) * (q["median_s"] / t)
        points.append(q)
    coef = tuple(c * feature_ratio(op, f, r) for f, c in zip(m.features, m.coef)) if m.kind != "loglog" else ()
    ys = tuple(_scale(y, launch, feature_ratio(op, m.features[0], r) - 1.0) for y in m.ys)
    return OpModel(features=m.features, coef=coef, kind=m.kind, xs=m.xs, ys=ys,
                   fit_err_pct=m.fit_err_pct, points=tuple(points))


def linearise(op: str, m: OpModel) -> OpModel:
    """``m`` as the non-negative line over its measured points (``fit.fit_linear``, the profiler's
    own fit), points kept; ``fit_err_pct`` is the line's in-sample max error. Linear models pass."""
    if m.kind == "linear":
        return m
    pts = [p for p in m.points if p.get("median_s", 0) > 0]
    coef, (_, worst) = fit_linear(OPS[op], pts, [p["median_s"] for p in pts])
    return OpModel(features=OPS[op], coef=tuple(float(c) for c in coef), fit_err_pct=worst, points=m.points)


def _links(ref: HardwareProfile, r: dict[str, float]) -> dict[str, LinkModel]:
    """Host copies over this PCIe generation; Gloo endpoint and all-reduce as measured."""
    out = {}
    for d in ("h2d", "d2h"):
        pinned, pageable = ref.links[f"{d}_pinned"], ref.links[f"{d}_pageable"]
        if r["pcie"] == 1.0:
            pin_bw, page_bw = pinned.bw_Bps, pageable.bw_Bps
        else:
            # a pageable copy = a host memcpy into a pinned bounce buffer in series with the DMA;
            # the memcpy rate is what makes that series reproduce the H200 host's pageable figure
            staging = 1.0 / (1.0 / pageable.bw_Bps - 1.0 / pinned.bw_Bps)
            pin_bw = pinned.bw_Bps / r["pcie"]
            page_bw = 1.0 / (1.0 / staging + 1.0 / pin_bw)
        out[f"{d}_pinned"] = LinkModel(pinned.latency_s, pin_bw)
        out[f"{d}_pageable"] = LinkModel(pageable.latency_s, page_bw)
    net, ar = ref.links["net"], ref.links["allreduce"]
    return {"net": LinkModel(net.latency_s, net.bw_Bps), "allreduce": LinkModel(ar.latency_s, ar.bw_Bps), **out}


def _gb(x: float) -> str:
    return f"{x / 1e9:.1f} GB/s"


def _sources(g: GpuSpec, ref: HardwareProfile) -> list[str]:
    h = GPUS[REFERENCE_GPU]
    pcie = f"PCIe Gen{g.pcie_gen} x16 host interface"
    src = [f"{g.datasheet}: {g.hbm_Bps / 1e9:g} GB/s {g.memory.split()[0]} memory bandwidth",
           f"{g.datasheet}: {g.fp32_flops / 1e12:g} TFLOP/s FP32 peak",
           f"{g.datasheet}: {pcie} ({PCIE_LANE_Bps[g.pcie_gen] * 16 / 1e9:.1f} GB/s per direction "
           "theoretical, PCI-SIG line rate after encoding)"]
    if g.tf32_flops:
        src.append(f"{g.datasheet}: {g.tf32_flops / 1e12:g} TFLOP/s dense TF32 (not used: TF32 matmul is off "
                   "by default in PyTorch)")
    if g.key != h.key:
        src += [f"{h.datasheet}: {h.hbm_Bps / 1e9:g} GB/s HBM3e memory bandwidth, {h.fp32_flops / 1e12:g} TFLOP/s "
                f"FP32 peak, PCIe Gen{h.pcie_gen} x16 (the measured device's figures, denominators of the ratios)"]
    m, L = ref.meta, ref.links
    src += [f"{REFERENCE} (costmodel/profiles/{REFERENCE}.json): every op's model and points, measured on an "
            f"{m.get('device_name')} by experiments/gpu_check.py (adaqp profile --device cuda, {m.get('grid')} grid, "
            f"torch {m.get('torch')}) on {m.get('date')}; raw output {REFERENCE_RESULTS}profile.json",
            f"{REFERENCE} links, measured on the H200 host: h2d pinned {_gb(L['h2d_pinned'].bw_Bps)}, d2h pinned "
            f"{_gb(L['d2h_pinned'].bw_Bps)}, h2d pageable {_gb(L['h2d_pageable'].bw_Bps)}, d2h pageable "
            f"{_gb(L['d2h_pageable'].bw_Bps)}; Gloo all_to_all (net, 2 ranks) {_gb(L['net'].bw_Bps)} + "
            f"{L['net'].latency_s * 1e6:.0f} us; Gloo all_reduce {_gb(L['allreduce'].bw_Bps)} + "
            f"{L['allreduce'].latency_s * 1e6:.0f} us"]
    return src


METHOD = " ".join((
    f"Derived op by op from the measured profile {REFERENCE} (NVIDIA H200) and datasheet ratios; not a",
    "measurement of this device. Every op keeps the measured model kind, features and points. Memory-bound",
    f"ops ({', '.join(MEMORY_BOUND)}) scale their size-dependent terms by H200 HBM bandwidth / this device's;",
    "quantize/dequantize are the runtime's fused Triton kernels as measured (gather + quantize + pack in one",
    "pass), so they scale as streaming memory traffic. GEMMs (gemm_fwd, gemm_bwd) scale the flops term by",
    "H200 FP32 FLOP/s / this device's (FP32, not TF32: PyTorch leaves TF32 matmul off) and the gemm_io term",
    "by the HBM ratio. Constant terms (kernel launches, dispatcher and host-side work) are kept as measured.",
    "Points (and loglog knots) become t + max(t - launch, 0) * (ratio - 1), launch = the op's measured",
    "constant (the linear fit's constant where the model has none), ratio = its terms' ratios weighted by",
    "their share of the fitted time at that point; p10/p90 move with the median. fit_err_pct and",
    "meta.fit_errors are the H200 fit's. An op the H200 fit models otherwise than by a line (meta.linearised)",
    "is first replaced by the non-negative line over its measured points (fit.fit_linear), so that every",
    "op is linear in its sizes as the solver's linear model and compact LP need (solver/model.py,",
    "solver/compact.py); its fit_err_pct is then that line's in-sample max error. Host links: pinned copies =",
    "the H200 host's measured pinned",
    "bandwidth x (this PCIe generation's x16 rate / Gen5's), latency as measured; pageable = a host memcpy",
    "in series with the pinned DMA, the memcpy rate fitted to the H200 host's pageable figures.",
    "net (Gloo all_to_all endpoint of host-staged paths) and allreduce (Gloo all_reduce) are the H200",
    "host's measured 2-rank figures, unchanged: Gloo runs on the host CPU. NCCL inter-rank bandwidth comes",
    "from the ClusterSpec's links (intra_link, network). interference = the measured factor (1.0);",
    "corun = 1 and no sync_s: one rank per GPU, which is what these profiles describe.",
))

ASSUMPTIONS = [
    "Kernel launch and host-side costs are the H200 host's (its CPU, driver and torch "
    "2.11); an older host would add to them.",
    "Memory-bound kernels reach the same fraction of datasheet HBM bandwidth on every device as on "
    "the H200; GEMMs the same fraction of FP32 peak. Cache sizes and SM counts are not modelled.",
    "The measured H200 is taken to be the SXM part (4.8 TB/s, 67 TFLOP/s FP32): it reports 143771 MiB "
    f"and a 1980 MHz maximum SM clock ({REFERENCE_RESULTS}gpu.txt).",
    "The H200 measurement is a quick grid (1 warm-up, 3 repetitions per size): quantize/dequantize "
    "fits are off by up to 55-78 % at some sizes (meta.fit_errors) and quantize_b1/b8 fitted no "
    "size term, so they cost their measured constant on every device.",
]


def spec_profile(key: str, reference: HardwareProfile | None = None) -> HardwareProfile:
    """The derived profile of one GPU in :data:`GPUS` (``v100``, ``a100``, ``h100``, ``h200``)
    from the measured H200 profile (``reference``, default the bundled ``h200-measured``)."""
    require(key in GPUS, f"no datasheet figures for {key!r}; known: {', '.join(GPUS)}")
    ref = reference or load_profile(REFERENCE)
    g, h = GPUS[key], GPUS[REFERENCE_GPU]
    r = time_ratios(g)
    linearised = {op: ref.ops[op].kind for op in OPS if ref.ops[op].kind != "linear"}
    ops = {op: derive_op(op, linearise(op, ref.ops[op]), r) for op in OPS}
    m = ref.meta
    ratios = {
        "memory_bound": {"ops": list(MEMORY_BOUND), "time_x": r["hbm"],
                         "basis": f"H200 HBM {h.hbm_Bps / 1e9:g} GB/s / {key} HBM {g.hbm_Bps / 1e9:g} GB/s"},
        "gemm_flops": {"ops": list(COMPUTE_BOUND), "term": "flops", "time_x": r["fp32"],
                       "basis": f"H200 FP32 {h.fp32_flops / 1e12:g} TFLOP/s / {key} FP32 {g.fp32_flops / 1e12:g} TFLOP/s"},
        "gemm_io": {"ops": list(COMPUTE_BOUND), "term": "gemm_io", "time_x": r["hbm"], "basis": "the HBM ratio"},
        "launch": {"term": "constant (every op)", "time_x": 1.0, "basis": "kept as measured"},
        "host_links": {"time_x": r["pcie"], "basis": f"PCIe Gen5 x16 / Gen{g.pcie_gen} x16 line rate"},
    }
    meta = {"device_name": g.name, "memory": g.memory, "generated_by": "adaqp.costmodel.specs",
            "derived_from": {"profile": REFERENCE, "file": f"costmodel/profiles/{REFERENCE}.json",
                             "results": REFERENCE_RESULTS, "device_name": m.get("device_name"),
                             "date": m.get("date"), "host": m.get("host"), "torch": m.get("torch"),
                             "grid": m.get("grid"), "measured_by": m.get("bundled_note")},
            "sources": _sources(g, ref), "ratios": ratios, "method": METHOD, "assumptions": ASSUMPTIONS,
            "linearised": {op: {"measured_kind": kind, "line_fit_err_pct": ops[op].fit_err_pct}
                           for op, kind in linearised.items()},
            "op_definitions": dict(m.get("op_definitions", {})),
            "fit_errors": {op: v for op, v in dict(m.get("fit_errors", {})).items() if op in OPS}}
    if key == REFERENCE_GPU:
        meta["note"] = (f"All ratios are 1: the ops equal {REFERENCE}'s (those in meta.linearised: the line "
                        f"over its measured points). This profile is the H200 as the other "
                        f"derived profiles describe their GPUs (one rank per GPU, links derived the same way); "
                        f"{REFERENCE} is the measured H200 as it is, with its shared-GPU figures (net@k, staged@k, "
                        "sync_s), which the h200-shared-* clusters use.")
    return HardwareProfile(name=key, kind="spec-derived", device="cuda", meta=meta, ops=ops,
                           links=_links(ref, r), interference=float(ref.interference))


def write_bundled(out_dir: str | Path = BUNDLED_DIR) -> list[Path]:
    """Write ``{v100,a100,h100,h200}.json`` into ``out_dir`` (the bundled profile folder)."""
    ref = load_profile(REFERENCE)
    return [spec_profile(k, ref).save(Path(out_dir) / f"{k}.json") for k in GPUS]


if __name__ == "__main__":
    for p in write_bundled(*sys.argv[1:2]):
        print(p)
