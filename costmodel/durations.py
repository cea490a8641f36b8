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


def gemm_s(p: HardwareProfile, rows, in_dim, out_dim, backward: bool = False, input_grad: bool = True):
    """Dense transform of ``rows`` rows (backward: both gradient products; without ``input_grad``,
    as for the input layer, the weight's only)."""
    op = ("gemm_bwd" if input_grad else "gemm_bwd_w") if backward else "gemm_fwd"
    return p.op(op, rows=rows, in_dim=in_dim, out_dim=out_dim)


def elementwise_s(p: HardwareProfile, op: str, elements=None, rows=None, width=None):
    """An element-wise op over ``rows`` x ``width`` (when the shape is known: a model with a
    per-row term, or ``nearest``, uses it) or over ``elements`` (Adam's parameters)."""
    assert op in ELEMENTWISE, op
    if rows is None:
        return p.op(op, elements=elements)
    return p.op(op, rows=rows, width=width, elements=np.asarray(rows) * width)


def encode_s(p: HardwareProfile, rows, width, bits: int):
    """Turning ``rows`` message rows into wire bytes: quantize+pack, or a gather for 16/32 bits."""
    if bits in QUANT_BITS:
        return p.op(f"quantize_b{bits}", rows=rows, width=width, elements=np.asarray(rows) * width)
    return p.op("copy", rows=rows, width=width, elements=np.asarray(rows) * width)


def decode_s(p: HardwareProfile, rows, width, bits: int):
    """Turning received bytes back into float rows: unpack+dequantize, or a copy for 16/32 bits."""
    if bits in QUANT_BITS:
        return p.op(f"dequantize_b{bits}", rows=rows, width=width, elements=np.asarray(rows) * width)
    return p.op("copy", rows=rows, width=width, elements=np.asarray(rows) * width)


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


def ring_allreduce_s(nbytes: float, world: int, bw_Bps: float, latency_s: float, burst_bytes: float = 0.0) -> float:
    """Ring all-reduce: 2(P-1) steps, each moving nbytes/P over the slowest link of the ring. A
    shaped link's token bucket (``burst_bytes``, taken full) passes its first bytes at once."""
    if world <= 1 or nbytes <= 0:
        return 0.0
    steps = 2 * (world - 1)
    return steps * latency_s + max(0.0, steps * nbytes / world - burst_bytes) / bw_Bps


def corun_slowdown(cluster, profile: HardwareProfile, running: int) -> float:
    """How many times slower each of ``running`` ranks computes than profiled when they compute at
    once on one shared compute resource (a host's CPU cores, or one GPU).

    CPU ops are profiled one rank at a time with the thread count a rank gets
    (``meta.compute_threads`` of ``meta.cores``). Running together, ranks contend for memory
    bandwidth and caches and, once ``running x threads`` exceeds the cores, for the cores
    themselves (time-slicing: each gets its share). The profile's ``corun_by_ranks`` measures
    this per rank count; without it, its single ``corun`` factor times the core share.
    A profile that does not state its cores has no contention model (each rank keeps its share).
    Ranks sharing a GPU time-slice it: ``running`` kernels progress at 1/``running`` each.
    The simulator applies this to the ranks computing at each instant
    (:mod:`adaqp.simulator.compute`); the analytic model takes it at "every rank computing"."""
    if running <= 1:
        return 1.0
    if cluster.device != "cpu":
        return float(running)
    table = {int(k): float(v) for k, v in profile.corun_by_ranks.items()}
    if running in table:
        return table[running]
    load = profile.core_load(running)
    if load is None:
        return 1.0
    if table and running > max(table):  # past the table: its largest entry, time-sliced further
        return table[max(table)] * max(1.0, load) / max(1.0, profile.core_load(max(table)))
    return profile.corun * max(1.0, load)


def compute_scale(cluster, profile: HardwareProfile) -> float:
    """The analytic model's static slow-down of every compute step on a CPU whose ranks share
    cores: :func:`corun_slowdown` with every rank of the host computing at once. Emulated hosts
    (``shared_host``) are one CPU underneath: all their ranks count. Ranks sharing a GPU are not
    scaled here: the analytic model adds up their work per device (``device_max``)."""
    if cluster.device != "cpu":
        return 1.0
    return corun_slowdown(cluster, profile, cluster.cpu_sharing)


def overlap_interference(cluster, profile: HardwareProfile) -> float:
    """How many times slower compute runs while the rank's own exchange is in flight.

    The profile measures it (``interference``) with an exchange at the speed of the transport
    it profiled (its ``net`` link): on a CPU the bytes are copied by the same cores, so the
    slow-down comes from the CPU time communication takes, which grows with the bytes moved per
    second. A cluster whose ranks exchange slower than that (a shaped or remote network) keeps
    the part of the slow-down in proportion: ``1 + (interference - 1) x min(1, rate / measured
    rate)``, with ``rate`` the per-rank bandwidth of the cluster's slowest hop."""
    f = profile.interference
    if f <= 1.0:
        return 1.0
    measured = profile.net_for(cluster.ranks_per_node).bw_Bps
    rate = measured
    if cluster.network is not None and cluster.nodes > 1:
        n = cluster.network
        rate = min(rate, n.bw_Bps / n.oversubscription / max(1, cluster.ranks_per_node))
    return 1.0 + (f - 1.0) * min(1.0, rate / measured)
