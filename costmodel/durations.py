"""One function per duration. The analytic model, the solver's constraints and the simulator's
tasks all call these, so every figure in the project comes from one place.

All functions accept numpy arrays for their sizes (the cost model is vectorised over ranks).
"""

from __future__ import annotations

import numpy as np

from adaqp.costmodel.profile import QUANT_BITS, HardwareProfile

ELEMENTWISE = ("relu", "dropout", "layernorm", "copy", "adam")


def spmm_s(p: HardwareProfile, rows, nnz, width, backward: bool = False):
    """Sparse aggregation of ``nnz`` edges into ``rows`` output rows of ``width`` features."""
    return p.op("spmm_bwd" if backward else "spmm_fwd", rows=rows, nnz=nnz, width=width)


def gemm_s(p: HardwareProfile, rows, in_dim, out_dim, backward: bool = False):
    """Dense transform of ``rows`` rows (backward: both gradient products)."""
    return p.op("gemm_bwd" if backward else "gemm_fwd", rows=rows, in_dim=in_dim, out_dim=out_dim)


def elementwise_s(p: HardwareProfile, op: str, elements):
    assert op in ELEMENTWISE, op
    return p.op(op, elements=elements)


def encode_s(p: HardwareProfile, rows, width, bits: int):
    """Turning ``rows`` message rows into wire bytes: quantize+pack, or a gather for 16/32 bits."""
    if bits in QUANT_BITS:
        return p.op(f"quantize_b{bits}", rows=rows, elements=np.asarray(rows) * width)
    return p.op("copy", elements=np.asarray(rows) * width)


def decode_s(p: HardwareProfile, rows, width, bits: int):
    """Turning received bytes back into float rows: unpack+dequantize, or a copy for 16/32 bits."""
    if bits in QUANT_BITS:
        return p.op(f"dequantize_b{bits}", rows=rows, elements=np.asarray(rows) * width)
    return p.op("copy", elements=np.asarray(rows) * width)


def encode_mixed_s(p: HardwareProfile, rows_by_bits: dict[int, np.ndarray], width: int, decode: bool = False):
    """Sum over bit-width groups (a message with mixed widths is coded group by group)."""
    fn = decode_s if decode else encode_s
    total = 0.0
    for b, rows in rows_by_bits.items():
        rows = np.asarray(rows)
        total = total + np.where(rows > 0, fn(p, rows, width, b), 0.0)
    return total


def link_s(latency_s: float, bw_Bps: float, nbytes):
    """Latency plus serialisation: the time one message of ``nbytes`` holds a link."""
    nbytes = np.asarray(nbytes, dtype=np.float64)
    t = np.where(nbytes > 0, latency_s + nbytes / bw_Bps, 0.0)
    return float(t) if t.ndim == 0 else t


def ring_allreduce_s(nbytes: float, world: int, bw_Bps: float, latency_s: float) -> float:
    """Ring all-reduce: 2(P-1) steps, each moving nbytes/P over the slowest link of the ring."""
    if world <= 1 or nbytes <= 0:
        return 0.0
    steps = 2 * (world - 1)
    return steps * (latency_s + nbytes / world / bw_Bps)


def compute_scale(cluster, profile: HardwareProfile) -> float:
    """How much slower compute runs than profiled because ranks share one CPU.

    CPU ops are profiled one rank at a time with the thread count a rank gets; when all k ranks of
    the host compute at once they contend for memory bandwidth (the profile's measured ``corun``
    factor) and, once k x threads exceeds the cores, for the cores themselves. Ranks sharing a
    GPU are not scaled here: their kernels serialise on the device, which the models handle.
    Emulated hosts (``shared_host``) are one CPU underneath: all their ranks count."""
    k = cluster.cpu_sharing
    if k <= 1 or cluster.device != "cpu":
        return 1.0
    cores = float(profile.meta.get("cores") or 1)
    threads = float(profile.meta.get("compute_threads") or 1)
    return profile.corun * max(1.0, k * threads / cores)
