"""Micro-benchmarks that measure this machine and fit a :class:`HardwareProfile` (``adaqp profile``).

Compute ops run through the functions the runtime calls (``runtime.aggregate.csr_tensor`` / ``spmm``,
``nn.Linear``, ``runtime.model.dropout``, the exchanger's gather + ``message.pack_message`` /
``unpack_message``) with the thread count the launcher gives a rank (``cpu_count // nprocs``): a
rank never has the whole machine. Links and the overlap interference are measured on a real
process group (:mod:`.ranks`). Per point: warm-up, repetitions within a time budget, median
/ p10 / p90 to 4 significant digits; the medians are fitted by ``costmodel.fit`` into the
:class:`~adaqp.costmodel.profile.HardwareProfile` that the cost model reads.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from datetime import datetime, timezone

import torch

from adaqp.costmodel import fit
from adaqp.costmodel.profile import OP_FEATURES, QUANT_BITS, HardwareProfile
from adaqp.runtime.hostmem import state as hostmem_state
from adaqp.runtime.profiling.gpu import SHARED_METHOD, gpu_quick_grid, measure_shared_gpu
from adaqp.runtime.profiling.ranks import (interference_summary, measure_copies, measure_links,
                                           measure_sync, n_reps, SYNC_SPMM,
                                           r4 as _r4, random_csr, stats)
from adaqp.errors import require
from adaqp.rng import KeyStream

MiB = 1 << 20


@dataclass(frozen=True)
class Grid:
    """What to measure. Sizes: spmm (rows, nnz, width), gemm (rows, in_dim, out_dim), rows x width
    for the element-wise / message ops, parameter counts for Adam, bytes for links."""

    label: str
    spmm: tuple = ()
    gemm: tuple = ()
    elementwise: tuple = ()
    adam: tuple = ()
    link_bytes: tuple = ()
    allreduce_bytes: tuple = ()
    copy_bytes: tuple = ()  # host <-> device (CUDA only)
    warmup: int = 2
    reps: int = 7
    budget_s: float = 1.0  # per point: repetitions stop adding up past this
    interference: dict = field(default_factory=dict)
    shared_ranks: tuple = (2, 4)  # CUDA: ranks sharing the GPU through the host-staged exchange
    sync_reps: int = 300  # CPU: loop iterations of the sync-floor benchmark per rank count
    sync_spmm: tuple = SYNC_SPMM  # CPU: (rows, nnz) of the compute between two synchronising steps
    host_ranks: int | None = None  # CPU: sync and co-run tables for 2 .. this many ranks (None: 2 x cores)

    def max_host_ranks(self) -> int:
        """The most ranks the CPU host tables cover: ``host_ranks``, or two per core (the most
        ranks sharing this host's cores that a prediction may ask about)."""
        return self.host_ranks or max(2, 2 * (os.cpu_count() or 1))


# Widths (features per node) reach 2048 and GEMM input widths 4096: a graph's input layer is as wide
# as its features (Cora 1,433, CiteSeer 3,703), and a model evaluated far beyond its measured
# widths extrapolates. Widths past 256 are measured at up to 30,000 rows only (wide inputs come
# with small graphs or a partition's share of a larger one); the caps on nnz*width, rows*width and
# flops keep every point under ~0.5 s and 170 MB. ``estimate_grid_s`` puts the compute part at
# ~3 min on 2 cores (1 thread per rank), links and sync add ~40 s.
FULL_ROWS = (1000, 3000, 10_000, 30_000, 100_000, 200_000)
FULL_WIDTHS = (16, 64, 256, 512, 1024, 2048)
WIDE_ROWS = (1000, 3000, 10_000, 30_000)
FULL_GEMM = ((16, 16), (64, 64), (128, 64), (256, 41), (256, 256), (512, 256), (1024, 16), (1024, 128),
             (1024, 512), (2048, 256), (4096, 64), (4096, 256))


def full_grid() -> Grid:
    return Grid("full",
                # mean degree 4..50; nnz <= 5e6, nnz*width <= 6.4e8, rows*width <= 4.2e7
                spmm=tuple((r, r * d, w) for r in FULL_ROWS for d in (4, 16, 50) for w in FULL_WIDTHS
                           if r * d <= 5e6 and r * d * w <= 6.4e8 and r * w <= 4.2e7
                           and (w <= 256 or r in WIDE_ROWS)),
                gemm=tuple((r, i, o) for r in (1000, 10_000, 30_000, 100_000) for i, o in FULL_GEMM
                           if r * i * o <= 1.2e10 and r * i <= 4.2e7),
                elementwise=tuple((r, w) for r in FULL_ROWS for w in FULL_WIDTHS
                                  if r * w <= 26e6 and (w <= 256 or r in WIDE_ROWS)),
                adam=(1000, 10_000, 100_000, 300_000, 1_000_000, 4_000_000),
                link_bytes=tuple(1024 * 4 ** k for k in range(9)),  # 1 KiB .. 64 MiB
                allreduce_bytes=tuple(4096 * 4 ** k for k in range(7)),  # 4 KiB .. 16 MiB
                copy_bytes=tuple(4096 * 4 ** k for k in range(10)),
                warmup=2, reps=9, budget_s=0.5,
                interference=dict(rows=50_000, nnz=400_000, width=64, reps=20, max_bytes=64 * MiB))


def quick_grid() -> Grid:
    return Grid("quick", spmm=((1000, 4000, 16), (10_000, 250_000, 64), (100_000, 400_000, 64),
                               (50_000, 1_250_000, 128), (20_000, 80_000, 256)),
                gemm=((1000, 16, 16), (10_000, 128, 64), (10_000, 256, 256), (50_000, 512, 256)),
                elementwise=((1000, 16), (10_000, 64), (100_000, 64), (20_000, 256)),
                adam=(1000, 100_000, 1_000_000), link_bytes=(1024, 16_384, 262_144, 2 * MiB, 8 * MiB),
                allreduce_bytes=(4096, 65_536, MiB, 4 * MiB), copy_bytes=(4096, 262_144, 16 * MiB),
                warmup=1, reps=3, budget_s=0.15, sync_reps=100,
                interference=dict(rows=50_000, nnz=400_000, width=64, reps=6, max_bytes=32 * MiB))



# ---- timing ---------------------------------------------------------------------------------

def last_level_cache_bytes(default: int = 32 << 20) -> int:
    """The largest CPU cache this machine reports (sysfs), or ``default``."""
    import glob

    sizes = []
    for f in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size"):
        text = Path(f).read_text().strip().upper()
        unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        try:
            sizes.append(int(text.rstrip("KMG")) * unit)
        except ValueError:
            continue
    return max(sizes, default=default)


_FLUSH: list = []  # one buffer, reused by every timing


def evict_caches() -> None:
    """Write a buffer twice the last-level cache: whatever the op touched last is gone.

    Why: in training an op's inputs were evicted by the dozens of other ops (and the other ranks)
    since it last ran, while a loop timing it alone finds them in cache. On this project's 2-core
    machine a rank's SpMM measured hot ran 3x faster than the same SpMM inside an epoch; measured
    after an eviction it ran as in the epoch. CPU timings therefore evict before every call."""
    if not _FLUSH:
        _FLUSH.append(torch.empty(2 * last_level_cache_bytes() // 4))
    _FLUSH[0].fill_(1.0)


def _once(fn, device: str, cold: bool, held: list) -> float:
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    if cold:
        evict_caches()
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    took = time.perf_counter() - t0
    held[:] = [out]  # freed only once the next call's output exists (see time_fn)
    return took


def time_fn(fn, device: str, warmup: int, reps: int, budget_s: float,
            cold: bool | None = None) -> tuple[float, float, float]:
    """(median, p10, p90) seconds of ``fn()``; on CUDA the device is synchronised around each call
    so that a time is the kernel's, not its launch's. ``cold`` (default: on CPU) evicts the caches
    before each call (:func:`evict_caches`). Repetitions: see ``n_reps``.

    Each call's output stays alive until the next call has returned, as an epoch keeps an op's
    output for the backward pass. Why: freed at once, a large output is handed back to the OS and
    the next call faults fresh pages in; on the 2-core CPU this project is developed on, dropout
    over Cora's 1,354 x 1,433 input rows took 15.6 ms timed that way, 8.5 ms with its output held,
    and 8.4-8.9 ms inside training epochs."""
    cold = (not device.startswith("cuda")) if cold is None else cold
    held: list = []
    first = [_once(fn, device, cold, held) for _ in range(max(1, warmup))][-1]
    return stats([_once(fn, device, cold, held) for _ in range(n_reps(first, reps, budget_s))])


# ---- the ops, each through the runtime's own code path ----------------------------------------

def exact_csr(rows: int, nnz: int, seed: int = 0):
    """(indptr, indices, values) of a square CSR with exactly ``nnz`` entries: ``nnz // rows``
    uniformly random sorted columns per row, one more in the first ``nnz % rows`` rows, values
    ``1/deg``. With ``nnz`` a multiple of ``rows`` it is :func:`.ranks.random_csr`."""
    import numpy as np

    if nnz % rows == 0 and nnz > 0:
        return random_csr(rows, nnz, seed)
    rng = np.random.default_rng(seed)
    deg = np.full(rows, nnz // rows, np.int64)
    deg[: nnz % rows] += 1
    row = np.repeat(np.arange(rows), deg)
    cols = rng.integers(0, rows, size=nnz)
    order = np.lexsort((cols, row))
    vals = (1.0 / np.maximum(deg, 1)).astype(np.float32)[row]
    return np.concatenate([[0], np.cumsum(deg)]), cols[order], vals


def _spmm_op(transposed: bool):
    import scipy.sparse as sp

    from adaqp.runtime.aggregate import csr_tensor, spmm

    def setup(dev, rows, nnz, width):
        ip, ix, v = exact_csr(rows, nnz)
        if transposed:  # as the runtime builds A^T: once, through scipy, indices sorted
            t = sp.csr_matrix((v, ix, ip), shape=(rows, rows)).T.tocsr()
            t.sort_indices()
            ip, ix, v = t.indptr, t.indices, t.data
        a = csr_tensor(ip, ix, v, (rows, rows), dev)
        x = torch.randn(rows, width, device=dev)
        return lambda: spmm(a, x)
    return setup


def _gemm_op(backward: bool, input_grad: bool = True):
    def setup(dev, rows, in_dim, out_dim):
        lin = torch.nn.Linear(in_dim, out_dim).to(dev)
        x = torch.randn(rows, in_dim, device=dev, requires_grad=backward and input_grad)
        if not backward:
            return lambda: lin(x)
        y = lin(x)
        dy = torch.randn_like(y)
        # dX, dW and db: what autograd runs for one layer's transform; dW and db only for the
        # input layer, whose features need no gradient
        wrt = (x, lin.weight, lin.bias) if input_grad else (lin.weight, lin.bias)
        return lambda: torch.autograd.grad(y, wrt, dy, retain_graph=True)
    return setup


def _elementwise_op(op: str):
    from adaqp import message
    from adaqp.runtime.model import dropout

    def setup(dev, rows, width):
        x = torch.randn(rows, width, device=dev)
        if op == "relu":
            return lambda: torch.nn.functional.relu(x)
        if op == "dropout":
            return lambda: dropout(x, 0.5, True)
        if op == "layernorm":
            ln = torch.nn.LayerNorm(width).to(dev)
            return lambda: ln(x)
        idx = torch.randint(0, rows, (rows,), device=dev)
        keys = KeyStream(0)
        if op == "copy":  # the exchanger's fp32 path: gather rows into the send buffer
            buf = torch.empty(rows * width * 4, dtype=torch.uint8, device=dev)
            return lambda: torch.index_select(x, 0, idx, out=buf.view(torch.float32).view(rows, width))
        bits = torch.full((rows,), int(op.rsplit("_b", 1)[1]), dtype=torch.int64, device=dev)
        plan = message.message_plan(bits, width, dev)  # built once per BitPlan, as the exchanger does
        buf = torch.empty(message.message_size(bits, width), dtype=torch.uint8, device=dev)
        if op.startswith("quantize"):  # gathered inside the fused kernel on CUDA
            return lambda: message.pack_message(x, bits, keys, check=False, out=buf, index=idx, plan=plan)
        message.pack_message(x, bits, keys, check=False, out=buf, plan=plan)
        out = torch.empty(rows, width, device=dev)
        return lambda: out.copy_(message.unpack_message(buf, bits, width, plan=plan))
    return setup


def _adam_setup(dev, elements):
    # ten tensors, like a 3-layer GNN's (3 x weight + bias, 2 x LayerNorm weight + bias)
    params = [torch.nn.Parameter(torch.randn(max(1, elements // 10), device=dev)) for _ in range(10)]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = torch.optim.Adam(params, lr=0.01)
    return opt.step


ELEMENTWISE = ("relu", "dropout", "layernorm", "copy",
               *(f"{d}quantize_b{b}" for d in ("", "de") for b in QUANT_BITS))
OP_DEFINITIONS = {
    "spmm_fwd": "torch CSR @ dense via runtime.aggregate.spmm; square random CSR, nnz//rows sorted "
                "uniform columns per row",
    "spmm_bwd": "the transposed CSR (scipy .T.tocsr(), sorted, as runtime.aggregate builds it) @ dense; "
                "sizes are the forward's",
    "gemm_fwd": "nn.Linear(in_dim, out_dim) forward on [rows, in_dim]",
    "gemm_bwd": "autograd.grad of nn.Linear: dX, dW and db",
    "gemm_bwd_w": "autograd.grad of nn.Linear: dW and db only (the input layer's backward)",
    "relu": "F.relu, forward only", "dropout": "runtime.model.dropout(p=0.5), forward only",
    "layernorm": "nn.LayerNorm(width) forward only (its backward is not measured)",
    "copy": "exchanger fp32 path: index_select rows into a preallocated send buffer (out=)",
    "quantize_bN": "exchanger quantized path: message.pack_message of rows gathered by index (uniform N bits, "
                   "check=False, out= the send buffer, message plan built once; fused kernel on CUDA)",
    "dequantize_bN": "message.unpack_message (uniform N bits, message plan built once) + copy into the output rows",
    "adam": "torch.optim.Adam(lr=0.01).step() over `elements` parameters in 10 tensors",
}


METHOD = (
    "adaqp profile: micro-benchmarks on {device}. Compute ops timed in one process with {threads} "
    "thread(s) (= cpu_count // nprocs, what each rank gets), through the runtime's own code paths (see "
    "op_definitions); warm-up runs, then repetitions, median kept with p10/p90; on a CPU every call is "
    "timed after writing a buffer twice the last-level cache (evict_caches: the op's inputs are not in "
    "cache, as in an epoch). Fitted by relative-weighted "
    "nnls on the op's features; log-log interpolation (where a line is off by more than {threshold:g}% and "
    "one feature dominates) and nearest measured points scaled by the line's work compete with it on "
    "leave-one-size-out error (the smallest median among those whose max is within "
    "{worst:g}x the smallest max). Links on a real {nprocs}-rank process "
    "group: net = all_to_all_single with nbytes to each peer (all ranks at once), pairs = one-way "
    "point-to-point per ordered pair (others idle; points are round trips with a 1-byte ack, latency = half "
    "the intercept), allreduce = all_reduce of an nbytes fp32 buffer; "
    "latency + nbytes/bw by relative-weighted nnls; per-rep times are the max over ranks. Interference = "
    "SpMM time with this rank's async all_to_all in flight / without, all ranks computing, median of the "
    "pooled per-rep ratios, clamped below at 1.0; corun = interference.corun_factor = SpMM with "
    "all ranks computing / with the others idle, the way ops are profiled; corun_by_ranks = the same for k = 2 .. "
    "2 x cores ranks at once (a SpMM + dense step run back to back for a window, alone in turn and all at once, "
    "per round k / sum over ranks of (alone / together), the median over the rounds (ranks.corun_factor); "
    "cores / k threads each), "
    "applied to the ranks computing at each instant (durations.corun_slowdown). fit_err_pct = max |relative "
    "error| over the points (compute ops: leave-one-size-out); fit_errors holds [median, max] %.")


def op_benchmarks(grid: Grid) -> list[tuple[str, object, list[dict]]]:
    """(op, setup, sizes) for every op; sizes are the keyword arguments of ``setup``."""
    out: list = []
    for op in ("spmm_fwd", "spmm_bwd"):
        out.append((op, _spmm_op(op == "spmm_bwd"), [dict(rows=r, nnz=n, width=w) for r, n, w in grid.spmm]))
    for op in ("gemm_fwd", "gemm_bwd", "gemm_bwd_w"):
        out.append((op, _gemm_op(op != "gemm_fwd", input_grad=op == "gemm_bwd"),
                    [dict(rows=r, in_dim=i, out_dim=o) for r, i, o in grid.gemm]))
    for op in ELEMENTWISE:
        out.append((op, _elementwise_op(op), [dict(rows=r, width=w) for r, w in grid.elementwise]))
    out.append(("adam", _adam_setup, [dict(elements=n) for n in grid.adam]))
    assert sorted(o[0] for o in out) == sorted(OP_FEATURES), "every op of the schema is measured"
    return out


def point_sizes(s: Mapping) -> dict:
    """A measured point's sizes: the setup's, and ``elements`` (rows x width) for the row ops."""
    return {**s, "elements": s["rows"] * s["width"]} if "width" in s and "nnz" not in s else dict(s)


def _measure_points(setup, sizes, device, grid, bar=None) -> list[dict]:
    """One point per size: the sizes (row ops also get ``elements``) and median / p10 / p90."""
    points = []
    for s in sizes:
        fn = setup(device, **s)
        med, p10, p90 = (_r4(v) for v in time_fn(fn, device, grid.warmup, grid.reps, grid.budget_s))
        del fn
        points.append({**point_sizes(s), "median_s": med, "p10_s": p10, "p90_s": p90})
        if bar is not None:
            bar.update(1)
    return points


def measure_op(op, setup, sizes, device, grid):
    """``op`` timed at ``sizes`` (``setup`` from :func:`op_benchmarks`) and fitted: (model with its
    points, fit errors)."""
    points = _measure_points(setup, sizes, device, grid)
    model, err = fit.fit_op(op, points, [p["median_s"] for p in points])
    return replace(model, points=tuple(points)), err


# ---- the whole profile ------------------------------------------------------------------------

def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _nccl_version() -> str | None:
    try:
        return ".".join(map(str, torch.cuda.nccl.version()))  # (major, minor, patch)
    except Exception:  # noqa: BLE001 - CPU builds have no NCCL: an answer, not an error
        return None


def _meta(device, grid, nprocs, threads, extra) -> dict:
    import torch.distributed as dist

    return {"host": socket.gethostname(), "device_name": _device_name(device), "cores": os.cpu_count(),
            "torch": torch.__version__, "nccl": _nccl_version(), "gloo": dist.is_gloo_available(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "grid": grid.label,
            "quick": grid.label == "quick", "nprocs": nprocs, "compute_threads": threads,
            "timing": {"warmup": grid.warmup, "reps": grid.reps, "budget_s_per_point": grid.budget_s},
            "method": METHOD.format(device=device, threads=threads, nprocs=nprocs,
                                    threshold=fit.LOGLOG_THRESHOLD_PCT, worst=fit.WORST_RATIO),
            "op_definitions": OP_DEFINITIONS, "host_memory": hostmem_state(), **extra}


def corun_table(grid: Grid, max_ranks: int) -> dict[str, float]:
    """``corun_by_ranks`` for 2 .. ``max_ranks`` ranks, at the sizes of ``grid``'s interference
    benchmark (:func:`.ranks.measure_corun`, looked up when called)."""
    from adaqp.runtime.profiling import ranks

    ic = grid.interference
    return ranks.measure_corun(max_ranks, rows=ic["rows"], nnz=ic["nnz"], width=ic["width"],
                               rounds=min(ranks.CORUN_ROUNDS, max(1, ic["reps"])),
                               window_s=ic.get("corun_window_s", ranks.CORUN_WINDOW_S))


def measure(device: str = "cpu", quick: bool = False, nprocs: int = 2, progress: bool = True,
            grid: Grid | None = None, name: str | None = None) -> HardwareProfile:
    """Measure this machine; ``grid`` overrides the full / quick size grids (tests use a tiny one)."""
    from tqdm import tqdm

    require(nprocs >= 2, f"links need a process group of at least 2 ranks, got nprocs={nprocs}")
    if device.startswith("cuda"):
        require(torch.cuda.is_available(), "--device cuda: no CUDA device is available on this machine")
    cpu = not device.startswith("cuda")
    grid = grid or ((quick_grid() if cpu else gpu_quick_grid()) if quick else full_grid())
    threads = max(1, (os.cpu_count() or 1) // nprocs)
    host_ranks = grid.max_host_ranks()
    t_start, load = time.perf_counter(), [round(v, 2) for v in os.getloadavg()]  # other work skews timings
    benches = {op: (setup, sizes) for op, setup, sizes in op_benchmarks(grid)}
    steps = [*benches] + (["links", "sync", "corun"] if cpu else ["shared", "copies"])
    ops, errors, links, extra, sync, corun_by_ranks = {}, {}, {}, {}, ({}, {}, {}), {}
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with tqdm(steps, desc="profiling", file=sys.stderr, disable=None if progress else True, unit="bench") as bar:
            for step in bar:
                bar.set_postfix_str(step)
                if step == "links":
                    links, extra = measure_links(grid, nprocs)
                elif step == "shared":  # k ranks time-sharing the GPU, host-staged exchange
                    links, extra = measure_shared_gpu(grid, device, grid.shared_ranks, nprocs)
                    sync = (extra.pop("sync_s"), extra.pop("allreduce_sync_s"), {})
                elif step == "copies":
                    links.update(measure_copies(grid, device))
                elif step == "sync":  # ranks time-sharing the cores, up to 2 per core
                    sync = measure_sync(host_ranks, reps=grid.sync_reps, spmm=grid.sync_spmm)
                elif step == "corun":  # the same rank counts, all computing at once
                    corun_by_ranks = corun_table(grid, host_ranks)
                else:
                    ops[step], errors[step] = measure_op(step, *benches[step], device, grid)
    finally:
        torch.set_num_threads(old_threads)
    interf = interference_summary(extra.pop("interference"))
    errors.update(extra.pop("errors"))
    meta = _meta(device, grid, nprocs, threads, {
        "fit_errors": {k: [round(e[0], 2), round(e[1], 2)] for k, e in errors.items()},
        "interference": interf, "elapsed_s": round(time.perf_counter() - t_start, 1), "loadavg_before": load,
        **({"links_p2p_points": extra["p2p_points"], "rank_threads": extra["rank_threads"],
            "backend": extra["backend"]} if cpu else
           {"staged_exchange": extra["staged_exchange"], "shared_ranks": extra["shared_ranks"],
            "shared_method": SHARED_METHOD,
            "backend": "gloo (host-staged)"})})
    name = name or (f"cpu-{os.cpu_count()}core" if device == "cpu" else f"{device.split(':')[0]}-measured")
    # on a GPU alone/solo is the time-sharing of the device itself, which the models serialise
    corun = max(1.0, interf.get("corun_factor") or 1.0) if cpu else 1.0
    return HardwareProfile(name, "measured", device.split(":")[0], meta, ops, links,
                           interference=max(1.0, interf["factor"]), corun=corun, sync_s=sync[0],
                           allreduce_sync_s=sync[1], sync_by_gap=sync[2], corun_by_ranks=corun_by_ranks)


# ---- measuring a workload's own sizes (``adaqp profile --for``) ---------------------------------

# Each size is timed in this many rounds, each with a fresh set-up, the rounds one after another
# through the whole list of sizes, and its point is the median of the rounds' medians. Why: a
# virtual machine's core slows down in spells of seconds while its host is busy elsewhere (on the
# 2-core development machine a pure-Python loop ran 1.7x slower for about a second at a time); a
# point timed in one stretch lands in whichever state held then.
FOR_ROUNDS = 3


def median_of_rounds(points: Sequence[Mapping]) -> dict:
    """One point from the same size timed in several rounds: the median of their medians, the
    lowest p10 and the highest p90."""
    import statistics

    return {**points[0], "median_s": _r4(statistics.median(p["median_s"] for p in points)),
            "p10_s": min(p["p10_s"] for p in points), "p90_s": max(p["p90_s"] for p in points)}


def _setup_sizes(op: str, sizes: Mapping) -> dict:
    """The keyword arguments of ``op``'s benchmark setup, from the sizes the cost model asks."""
    if op.startswith("spmm"):
        keys = ("rows", "nnz", "width")
    elif op.startswith("gemm"):
        keys = ("rows", "in_dim", "out_dim")
    elif op == "adam":
        keys = ("elements",)
    else:
        keys = ("rows", "width")
    missing = [k for k in keys if k not in sizes]
    require(not missing, f"{op}: sizes {dict(sizes)} lack {', '.join(missing)}")
    out = {k: int(sizes[k]) for k in keys}
    require(all(v > 0 for v in out.values()), f"{op}: sizes must be > 0, got {out}")
    return out


def merge_points(old: Sequence[Mapping], new: Sequence[Mapping]) -> list[dict]:
    """``old`` points without those of the same sizes as a ``new`` one, then ``new``."""
    replaced = {fit.size_key(p) for p in new}
    return [dict(p) for p in old if fit.size_key(p) not in replaced] + [dict(p) for p in new]


def measure_shapes(base: HardwareProfile, shapes: Mapping[str, Sequence[Mapping]], device: str = "cpu",
                   nprocs: int = 2, progress: bool = True, reps: int | None = None,
                   budget_s: float | None = None, note: str = "", name: str | None = None,
                   rounds: int = FOR_ROUNDS) -> HardwareProfile:
    """``base`` with the ops of ``shapes`` (``{op: [sizes, ...]}``, e.g. from
    :func:`adaqp.costmodel.shapes.workload_shapes`) measured at those sizes on this machine.

    Each size is timed by the op's micro-benchmark (the setups of the full profile) on synthetic
    tensors of that shape (sizes within 2 % of one another are timed once, so the shapes of
    several workloads may simply be concatenated per op); the points join the base's points of the op (a point of identical
    sizes is replaced) and the op is refit with :func:`fit.fit_op`. Other ops, links and tables
    stay as they are. Timing: the base's warm-up, repetitions (``reps`` overrides) and budget per
    point (``budget_s`` overrides), split over ``rounds`` (:data:`FOR_ROUNDS`); threads: the
    base's ``compute_threads`` (so that an op's points share one thread count), else
    ``cpu_count // nprocs``. ``meta["measured_for"]`` gains
    an entry: ``note`` (what the workload is), the date, threads and the sizes measured per op.
    A tqdm bar on stderr counts the points (``progress=False``: none)."""
    from datetime import datetime, timezone

    from tqdm import tqdm

    require(base.kind == "measured", f"profile {base.name!r} is {base.kind}: only a measured profile can "
                                     "take measured points (measure one first with adaqp profile --out)")
    kind = device.split(":")[0]
    require(base.device == kind, f"profile {base.name!r} describes a {base.device} device, not {kind}")
    if kind == "cuda":
        require(torch.cuda.is_available(), "cuda: no CUDA device is available on this machine")
    unknown = [op for op in shapes if op not in OP_FEATURES]
    require(not unknown, f"unknown op(s) {', '.join(unknown)}; known: {', '.join(OP_FEATURES)}")
    require(reps is None or reps >= 1, f"reps must be >= 1, got {reps}")
    require(rounds >= 1, f"rounds must be >= 1, got {rounds}")
    setups = {op: setup for op, setup, _ in op_benchmarks(Grid("setups"))}
    from adaqp.costmodel.shapes import unique_sizes

    # the setups' sizes, each once (shapes merged from several workloads repeat sizes)
    todo = unique_sizes((op, _setup_sizes(op, s)) for op, sizes in shapes.items() for s in sizes)
    timing = dict(base.meta.get("timing", {})) if isinstance(base.meta.get("timing"), Mapping) else {}
    full = full_grid()
    grid = Grid("for", warmup=int(timing.get("warmup", full.warmup)),
                reps=int(reps or timing.get("reps", full.reps)),
                budget_s=float(budget_s or timing.get("budget_s_per_point", full.budget_s)))
    threads = int(base.meta.get("compute_threads") or max(1, (os.cpu_count() or 1) // nprocs))
    ops, errors = dict(base.ops), dict(base.meta.get("fit_errors", {}))
    t0 = time.perf_counter()
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    # rounds: every size set up afresh and timed once per round, the rounds one after another
    # through the whole list, the reps split between them (see FOR_ROUNDS)
    per_round = replace(grid, reps=max(3, -(-grid.reps // rounds)), budget_s=grid.budget_s / rounds)
    try:
        with tqdm(total=rounds * sum(map(len, todo.values())), desc="profiling", file=sys.stderr,
                  disable=None if progress else True, unit="size") as bar:
            timed: dict[str, list[list[dict]]] = {op: [] for op in todo}
            for _ in range(rounds):
                for op, sizes in todo.items():
                    bar.set_postfix_str(op)
                    timed[op].append(_measure_points(setups[op], sizes, device, per_round, bar))
            for op, by_round in timed.items():
                new = [median_of_rounds(pts) for pts in zip(*by_round)]
                points = merge_points(base.ops[op].points if op in base.ops else (), new)
                model, err = fit.fit_op(op, points, [p["median_s"] for p in points])
                ops[op] = replace(model, points=tuple(points))
                errors[op] = [round(err[0], 2), round(err[1], 2)]
    finally:
        torch.set_num_threads(old_threads)
    meta = dict(base.meta)
    meta["fit_errors"] = errors
    meta["measured_for"] = [*meta.get("measured_for", []), {
        "workload": note, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(), "device_name": _device_name(device), "threads": threads,
        "timing": {"warmup": grid.warmup, "reps": grid.reps, "budget_s_per_point": grid.budget_s, "rounds": rounds},
        "elapsed_s": round(time.perf_counter() - t0, 1), "sizes": {op: len(v) for op, v in todo.items()},
        "host_memory": hostmem_state()}]
    return replace(base, name=name or base.name, ops=ops, meta=meta)


# ---- what a grid costs ---------------------------------------------------------------------------

# seconds per unit of set-up work (random CSR, its transpose, random tensors), measured on 2 cores
_SETUP_S = {"csr": 1.6e-8, "transpose": 2.2e-8, "tensor": 9e-9}


def estimate_grid_s(grid: Grid, profile: HardwareProfile) -> dict[str, float]:
    """Seconds the compute benchmarks of ``grid`` take on the machine ``profile`` describes,
    per op, from the op's predicted time per point: warm-up, then the repetitions ``n_reps``
    allows within the budget, plus setting the tensors up. Links, sync and interference are not
    included (about 50 s on 2 cores)."""
    out = {}
    for op, _, sizes in op_benchmarks(grid):
        total = 0.0
        for s in sizes:
            q = point_sizes(s)
            t = float(profile.op(op, **q))
            total += grid.warmup * t + n_reps(t, grid.reps, grid.budget_s) * t
            if op.startswith("spmm"):
                total += s["nnz"] * (_SETUP_S["csr"] + (_SETUP_S["transpose"] if op == "spmm_bwd" else 0.0))
                total += s["rows"] * s["width"] * _SETUP_S["tensor"]
            elif op.startswith("gemm"):
                total += s["rows"] * (s["in_dim"] + 2 * s["out_dim"]) * _SETUP_S["tensor"]
            elif op != "adam":
                total += s["rows"] * s["width"] * _SETUP_S["tensor"]
        out[op] = total
    return out
