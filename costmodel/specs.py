"""Hardware profiles derived from published GPU specifications (``kind: "spec-derived"``).

These exist so that a what-if question ("how long on 8 A100s?") can be asked without the GPU.
They are first-order roofline estimates, not measurements: every coefficient is a datasheet
figure times an efficiency, and every efficiency is either calibrated against one of the few
figures measured on the H200 we were lent (DESIGN.md) or stated as an assumption. Each profile
carries the figures (``meta.sources``), the derivation (``meta.method``) and the numbers used
(``meta.assumptions``), so a reader can redo the arithmetic. Replace a spec-derived profile with
a measured one (``costmodel/profiler.py``) as soon as the hardware is at hand.

Regenerate the bundled files with ``python -m adaqp.costmodel.specs [OUT_DIR]``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from adaqp.cluster import PCIE_LANE_Bps
from adaqp.costmodel.profile import BUNDLED_DIR, OPS, QUANT_BITS, HardwareProfile, LinkModel, OpModel
from adaqp.errors import require

__all__ = ["GpuSpec", "GPUS", "ASSUMPTIONS", "spec_profile", "write_bundled"]


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
    measured: str = ""  # non-empty: host-link figures come from our own measurement


GPUS = {g.key: g for g in (
    GpuSpec("v100", "NVIDIA Tesla V100 SXM2 (16/32 GB)", "NVIDIA Tesla V100 GPU Accelerator datasheet",
            "HBM2 16/32 GB", 900e9, 15.7e12, 0.0, 3),
    GpuSpec("a100", "NVIDIA A100 40GB SXM", "NVIDIA A100 Tensor Core GPU datasheet",
            "HBM2 40 GB", 1555e9, 19.5e12, 156e12, 4),
    GpuSpec("h100", "NVIDIA H100 SXM 80GB", "NVIDIA H100 Tensor Core GPU datasheet",
            "HBM3 80 GB", 3.35e12, 67e12, 494.5e12, 5),
    GpuSpec("h200", "NVIDIA H200 SXM 141GB", "NVIDIA H200 Tensor Core GPU datasheet",
            "HBM3e 141 GB", 4.8e12, 67e12, 494.5e12, 5, measured="DESIGN.md, H200 host"),
)}

# ---- figures measured on the lent H200 (DESIGN.md); the calibration anchors -----------------
H200_SPMM = {"rows": 2e6, "nnz": 50e6, "width": 128, "seconds": 13.6e-3}  # CSR SpMM, fp32
H200_D2D_Bps = 4.26e12  # device-to-device copy, read + write
H200_EAGER_QUANT_Bps = 190e9  # eager quantize+pack, fp32 input bytes/s (180-200 measured)
H200_PINNED_Bps = 55e9  # pinned D2H / H2D
H200_PAGEABLE_Bps = 16e9  # pageable D2H (H2D pageable not measured)

# ---- stated assumptions ---------------------------------------------------------------------
LAUNCH_S = 8e-6  # one eager PyTorch op: dispatcher + cudaLaunchKernel, middle of 5-10 us
GEMM_FRACTION = 0.70  # of peak FP32 FLOP/s that cuBLAS SGEMM reaches on tall-skinny GNN shapes
SPMM_NNZ_BYTES = 4.0  # per nnz*width: the gathered fp32 input element (indices folded in the fit)
SPMM_ROW_BYTES = 4.0  # per row*width: the fp32 output element written once
# HBM bytes per element: read + write fp32 (relu, layernorm fused, copy = index_select gather);
# dropout also writes a 1-byte mask; adam is PyTorch's default foreach Adam, ~8 passes over
# param/grad/exp_avg/exp_avg_sq (~64 B per parameter, not the 28 B of a fused kernel).
ELEM_BYTES = {"relu": 8.0, "dropout": 9.0, "layernorm": 8.0, "copy": 8.0, "adam": 64.0}
ELEM_LAUNCHES = {"relu": 1, "dropout": 1, "layernorm": 1, "copy": 1, "adam": 8}
QUANT_LAUNCHES, DEQUANT_LAUNCHES = 12, 6  # eager kernels: min, max, sub, mul, rand, ... pack
QUANT_ROW_BYTES = 16.0  # per row: fp32 min/max/scale in the eager passes + bf16 (lo, scale)
COPY_LATENCY_S = 10e-6  # cudaMemcpyAsync issue + DMA setup
NET_LATENCY_S, ALLREDUCE_LATENCY_S = 20e-6, 50e-6  # transport software latency per message / call
GLOO_HOST_Bps = 0.9e9  # host-staged Gloo all_to_all, per rank, 2 ranks (DESIGN.md, H200 host)

# ---- calibrated efficiencies (computed, not tuned) ------------------------------------------
_H200_HBM = GPUS["h200"].hbm_Bps
_spmm_bytes = H200_SPMM["width"] * (H200_SPMM["nnz"] * SPMM_NNZ_BYTES + H200_SPMM["rows"] * SPMM_ROW_BYTES)
SPMM_FRACTION = _spmm_bytes / ((H200_SPMM["seconds"] - LAUNCH_S) * _H200_HBM)
ELEM_FRACTION = H200_D2D_Bps / _H200_HBM  # a streaming kernel reaches what a D2D copy reaches
EAGER_QUANT_FRACTION = H200_EAGER_QUANT_Bps / _H200_HBM  # ~1/25 of datasheet bandwidth
PCIE_EFFICIENCY = H200_PINNED_Bps / (16 * PCIE_LANE_Bps[5])  # pinned / theoretical Gen5 x16
# Pageable copies stage through a pinned bounce buffer: a host memcpy in series with the DMA.
# The host-memcpy rate that makes the series model reproduce the measured H200 pageable figure:
HOST_STAGING_Bps = 1.0 / (1.0 / H200_PAGEABLE_Bps - 1.0 / H200_PINNED_Bps)

ASSUMPTIONS = {
    "launch_s": LAUNCH_S, "gemm_fraction_of_fp32_peak": GEMM_FRACTION,
    "spmm_bytes_per_nnz_x_width": SPMM_NNZ_BYTES, "spmm_bytes_per_row_x_width": SPMM_ROW_BYTES,
    "elementwise_bytes_per_element": ELEM_BYTES, "elementwise_kernel_launches": ELEM_LAUNCHES,
    "quantize_kernel_launches": QUANT_LAUNCHES, "dequantize_kernel_launches": DEQUANT_LAUNCHES,
    "quantize_bytes_per_row": QUANT_ROW_BYTES, "copy_latency_s": COPY_LATENCY_S,
    "net_latency_s": NET_LATENCY_S, "allreduce_latency_s": ALLREDUCE_LATENCY_S, "gloo_host_Bps": GLOO_HOST_Bps,
    "calibrated": {"spmm_fraction_of_hbm": SPMM_FRACTION, "elementwise_fraction_of_hbm": ELEM_FRACTION,
                   "eager_quantize_fraction_of_hbm": EAGER_QUANT_FRACTION,
                   "pcie_pinned_efficiency": PCIE_EFFICIENCY, "host_staging_Bps": HOST_STAGING_Bps},
}

METHOD = " ".join((
    "First-order roofline estimate from datasheet peaks; not a measurement.",
    "SpMM (CSR, fp32) is memory-bound: t = launch + (4 B per nnz*width gathered + 4 B per row*width",
    "written) / (f_spmm * HBM bandwidth). f_spmm is calibrated from the single measured H200 SpMM",
    "(2M rows, 50M nnz, width 128: 13.6 ms) and applied unchanged to every device; index/value traffic",
    "and cache reuse are folded into it, so small widths and very skewed graphs are less accurate.",
    "spmm_bwd = spmm_fwd (assumes a transposed CSR is kept; an atomic scatter would be slower).",
    "GEMM: t = launch + 2*rows*in*out / (0.70 * peak FP32 FLOP/s) + 4 B*rows*(in+out) / (f_elem * HBM);",
    "summing the compute and I/O terms is conservative versus a roofline max. FP32 peak, not TF32,",
    "because PyTorch leaves TF32 matmul off by default. gemm_bwd = 2 x gemm_fwd (dX and dW).",
    "Elementwise ops (relu, dropout, layernorm, copy, adam): t = launches*launch + bytes/(f_elem * HBM),",
    "with f_elem = measured H200 D2D copy / datasheet HBM bandwidth.",
    "Quantize/dequantize (any bit width): the eager-PyTorch rate measured on the H200 (190 GB/s of",
    "fp32 input, ~1/25 of HBM bandwidth) scaled by each device's HBM bandwidth, plus the packed",
    "b/8 bytes per element and 16 B per row at f_elem; a fused kernel would be 5-6x faster.",
    "Dequantize is assumed to run at the same per-element rate with fewer kernels (not measured).",
    "Constant terms are kernel launches of an eager PyTorch op (8 us each).",
    "Host links: pinned = PCIe x16 theoretical * (measured H200 pinned / Gen5 x16 theoretical);",
    "pageable = host memcpy in series with the pinned DMA, the memcpy rate fitted to the measured",
    "H200 pageable figure (host memory differs between servers). The H200 uses its measured",
    "figures directly (H2D pageable not measured: assumed equal to D2H).",
    "net: Gloo's host endpoint (used by gloo-staged paths) at the measured host-staged rate; "
    "NCCL inter-rank bandwidth comes from the ClusterSpec's links",
    "(intra_link, network); these links carry the transport's software latency and, as a default",
    "ceiling, the device's pinned host-link bandwidth. interference = 1: not measured (copy",
    "engines use ~1% of HBM bandwidth; NCCL kernels competing for SMs would slow compute more).",
))


def _linear(*coef: float, op: str) -> OpModel:
    return OpModel(features=OPS[op], coef=tuple(float(c) for c in coef))


def _links(g: GpuSpec) -> dict[str, LinkModel]:
    if g.measured:
        pinned, pageable = H200_PINNED_Bps, H200_PAGEABLE_Bps
    else:
        pinned = 16 * PCIE_LANE_Bps[g.pcie_gen] * PCIE_EFFICIENCY
        pageable = 1.0 / (1.0 / HOST_STAGING_Bps + 1.0 / pinned)
    # "net" is the Gloo endpoint of the host-staged path (NCCL paths use the ClusterSpec's links):
    # a host property, measured once (~0.9 GB/s out per rank, 2 ranks on the H200 host).
    return {"net": LinkModel(NET_LATENCY_S, GLOO_HOST_Bps), "allreduce": LinkModel(ALLREDUCE_LATENCY_S, pinned),
            "h2d_pinned": LinkModel(COPY_LATENCY_S, pinned), "d2h_pinned": LinkModel(COPY_LATENCY_S, pinned),
            "h2d_pageable": LinkModel(COPY_LATENCY_S, pageable),
            "d2h_pageable": LinkModel(COPY_LATENCY_S, pageable)}


def _sources(g: GpuSpec) -> list[str]:
    pcie = f"PCIe Gen{g.pcie_gen} x16 host interface"
    src = [f"{g.datasheet}: {g.hbm_Bps / 1e9:g} GB/s {g.memory.split()[0]} memory bandwidth",
           f"{g.datasheet}: {g.fp32_flops / 1e12:g} TFLOP/s FP32 peak",
           f"{g.datasheet}: {pcie} ({PCIE_LANE_Bps[g.pcie_gen] * 16 / 1e9:.1f} GB/s per direction "
           "theoretical, PCI-SIG line rate after encoding)"]
    if g.tf32_flops:
        src.append(f"{g.datasheet}: {g.tf32_flops / 1e12:g} TFLOP/s dense TF32 (not used: TF32 matmul is off "
                   "by default in PyTorch)")
    src += ["DESIGN.md (measured, H200): CSR SpMM 2M nodes / 50M edges / 128 features = 13.6 ms",
            "DESIGN.md (measured, H200): device-to-device copy 4.26 TB/s (read + write)",
            "DESIGN.md (measured, H200): eager quantize+pack 180-200 GB/s of fp32 input",
            "DESIGN.md (measured, H200): pinned D2H/H2D 55 GB/s, pageable D2H 16 GB/s"]
    return src


def spec_profile(key: str) -> HardwareProfile:
    """The spec-derived profile of one GPU in :data:`GPUS` (``v100``, ``a100``, ``h100``, ``h200``)."""
    require(key in GPUS, f"no datasheet figures for {key!r}; known: {', '.join(GPUS)}")
    g = GPUS[key]
    spmm_bw = SPMM_FRACTION * g.hbm_Bps
    elem_bw = ELEM_FRACTION * g.hbm_Bps
    quant_bw = EAGER_QUANT_FRACTION * g.hbm_Bps  # fp32 input bytes/s of the eager pipeline
    spmm = (LAUNCH_S, SPMM_NNZ_BYTES / spmm_bw, SPMM_ROW_BYTES / spmm_bw)
    gemm = (LAUNCH_S, 2.0 / (GEMM_FRACTION * g.fp32_flops), 4.0 / elem_bw)
    ops = {"spmm_fwd": _linear(*spmm, op="spmm_fwd"), "spmm_bwd": _linear(*spmm, op="spmm_bwd"),
           "gemm_fwd": _linear(*gemm, op="gemm_fwd"),
           "gemm_bwd": _linear(*(2 * c for c in gemm), op="gemm_bwd")}
    for op, nbytes in ELEM_BYTES.items():
        ops[op] = _linear(ELEM_LAUNCHES[op] * LAUNCH_S, nbytes / elem_bw, op=op)
    for b in QUANT_BITS:
        per_elem = 4.0 / quant_bw + (b / 8.0) / elem_bw
        ops[f"quantize_b{b}"] = _linear(QUANT_LAUNCHES * LAUNCH_S, per_elem, QUANT_ROW_BYTES / elem_bw,
                                        op=f"quantize_b{b}")
        ops[f"dequantize_b{b}"] = _linear(DEQUANT_LAUNCHES * LAUNCH_S, per_elem, QUANT_ROW_BYTES / elem_bw,
                                          op=f"dequantize_b{b}")
    meta = {"device_name": g.name, "memory": g.memory, "generated_by": "adaqp.costmodel.specs",
            "sources": _sources(g), "method": METHOD, "assumptions": ASSUMPTIONS,
            "host_links": ("measured on the lent H200 (DESIGN.md)" if g.measured else
                           "derived from the PCIe generation; see method")}
    return HardwareProfile(name=key, kind="spec-derived", device="cuda", meta=meta,
                           ops={k: ops[k] for k in OPS}, links=_links(g), interference=1.0)


def write_bundled(out_dir: str | Path = BUNDLED_DIR) -> list[Path]:
    """Write ``{v100,a100,h100,h200}.json`` into ``out_dir`` (the bundled profile folder)."""
    return [spec_profile(k).save(Path(out_dir) / f"{k}.json") for k in GPUS]


if __name__ == "__main__":
    for p in write_bundled(*sys.argv[1:2]):
        print(p)
