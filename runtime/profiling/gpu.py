"""The shared-GPU side of ``adaqp profile --device cuda``: k ranks time-sharing one GPU.

For each k (2 and 4 by default) :func:`measure_shared_gpu` spawns k ranks on the profiled GPU
and ``shared_worker`` times, on the group:

* ``net@k``: the runtime's Gloo exchange on CPU tensors (what the cost model calls the
  endpoint of a ``gloo-staged`` path; its PCIe hops come from the measured pinned copies);
  fitted on the bytes a rank sends in all, as the model charges them;
* ``staged@k``: the whole host-staged exchange (:class:`~adaqp.runtime.staged.StagedTransport`,
  D2H + Gloo + H2D) on CUDA tensors; the network model costs ``gloo-staged`` exchanges by it
  (``costmodel.network.staged_measured``), ``net@k`` + the pinned copies stay for comparison;
* ``allreduce``: Gloo's all-reduce of an fp32 host buffer;
* ``sync_s[k]`` / ``allreduce_sync_s[k]``: the delay a staged exchange (and the staged
  all-reduce) adds per step while every rank keeps the GPU busy between steps, beyond its cost
  on an idle GPU (stream synchronisation, thread hand-off, peers waiting their turn on the GPU);
* interference: a CUDA SpMM loop with this rank's async staged exchange in flight / without
  (all ranks computing), and ``solo``: the loop with the other ranks idle (``alone / solo`` shows
  how the GPU is time-shared; the simulator serialises shared-GPU compute).

Per-rep times are MAX over ranks (a collective is as slow as its slowest rank) except for the
interference reports, which are per rank.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.distributed as dist

from adaqp.runtime.objects import all_gather_json
from adaqp.runtime.profiling.ranks import (a2a_buffers, bench_all_to_all, bench_allreduce, interference_report,
                                           max_over_ranks, r4, random_csr, stats, timed)

if TYPE_CHECKING:  # the grid type lives in profiler, which imports this module
    from adaqp.runtime.profiling.profiler import Grid


SHARED_METHOD = (
    "k ranks (spawned, backend gloo) share the profiled GPU. net@k = duplex_all_to_all on CPU tensors, "
    "fitted on the bytes one rank sends in all ((k-1) x nbytes); staged_exchange[k] = StagedTransport "
    "(D2H + Gloo + H2D) on CUDA tensors, same fit, for checking net@k + PCIe copies; sync_s[k] / "
    "allreduce_sync_s[k] = extra seconds a staged exchange of 64 B per peer / a staged all-reduce of 32k "
    "floats adds per iteration of a GPU SpMM loop run by every rank, less its cost on an idle GPU; "
    "interference = SpMM loop with this rank's async staged exchange in flight / without (all ranks "
    "computing). Times synchronise the device; MAX over ranks except the interference reports.")


def _sync(dev) -> None:
    if dev.type == "cuda":  # with CPU tensors (the CPU test of this module) there is nothing queued
        torch.cuda.synchronize(dev)


def _cuda_bufs(rank, world, nbytes, dev):
    send, recv, splits = a2a_buffers(rank, world, nbytes)
    return send.to(dev), recv.to(dev), splits


def bench_staged(rank, world, cfg, transport, dev) -> list[dict]:
    out = []
    for nb in cfg["sizes"]:
        send, recv, splits = _cuda_bufs(rank, world, nb, dev)

        def step():
            transport.all_to_all(recv, send, splits, splits, False)
            _sync(dev)  # the copy back has landed: the exchange is over
        ts = timed(step, cfg)
        out.append({"nbytes": nb, **dict(zip(("median_s", "p10_s", "p90_s"), stats(ts)))})
    return out


def _spmm_loop(dev, sizes: dict, seed: int):
    from adaqp.runtime.aggregate import csr_tensor, spmm

    rows = sizes["rows"]
    a = csr_tensor(*random_csr(rows, sizes["nnz"], seed=seed), (rows, rows), dev)
    x = torch.randn(rows, sizes["width"], generator=torch.Generator().manual_seed(seed)).to(dev)
    return lambda: [spmm(a, x) for _ in range(sizes["loop"])]


def _window(fn, dev) -> float:
    _sync(dev)
    t0 = time.perf_counter()
    fn()
    _sync(dev)
    return time.perf_counter() - t0


def _loaded_extra(step, loop, dev, reps: int) -> float:
    """Seconds ``step`` adds per iteration of a GPU compute loop run by every rank at once, less
    its cost on an idle GPU; MAX over ranks (as :func:`.ranks.loaded_extra`, synchronised)."""
    out = []
    for with_step in (False, True, False, True):  # alternate, so drift hits both alike
        dist.barrier()
        out.append(_window(lambda: [(loop(), step() if with_step else None) for _ in range(reps)], dev) / reps)
    idle = []
    for _ in range(reps):
        dist.barrier()
        idle.append(_window(step, dev))
    loaded = (out[1] + out[3] - out[0] - out[2]) / 2
    return max_over_ranks([max(0.0, loaded - float(np.median(idle)))])[0]


def measure_sync(rank, world, cfg, transport, dev) -> dict[str, float]:
    sc = cfg["sync"]
    loop = _spmm_loop(dev, sc, seed=rank)
    send, recv, splits = _cuda_bufs(rank, world, 64, dev)
    grad = torch.zeros(sc["allreduce_floats"], device=dev)
    return {"exchange": _loaded_extra(lambda: transport.all_to_all(recv, send, splits, splits, False),
                                      loop, dev, sc["reps"]),
            "allreduce": _loaded_extra(lambda: transport.all_reduce(grad), loop, dev, sc["reps"])}


def bench_interference(rank, world, cfg, transport, dev, staged_points) -> dict:
    """A SpMM loop alone vs with this rank's async staged exchange in flight (alternating), sized
    so that the transfer outlasts the loop; then the loop with the other ranks idle."""
    ic = cfg["interference"]
    loop = _spmm_loop(dev, ic, seed=rank)
    warm = max(_window(loop, dev) for _ in range(2))
    big = staged_points[-1]
    bw = big["nbytes"] * (world - 1) / big["median_s"]
    nb = float(min(ic["max_bytes"], max(1 << 20, 3.0 * warm * bw / (world - 1))))
    nb = int(max_over_ranks([nb])[0])  # splits must agree across ranks
    send, recv, splits = _cuda_bufs(rank, world, nb, dev)

    def once(comm: bool) -> tuple[float, bool]:
        dist.barrier()
        _sync(dev)
        job = transport.all_to_all(recv, send, splits, splits, True) if comm else None
        t = _window(loop, dev)
        busy = job is not None and not job.is_completed()
        if job is not None:
            job.wait()
        return t, busy
    return interference_report(rank, world, ic["reps"], nb, alone=lambda: once(False)[0],
                               overlapped=lambda: once(True), solo=lambda: _window(loop, dev))


def shared_worker(rank: int, world: int, cfg: dict) -> dict:
    """Everything the parent needs from k ranks sharing ``cfg["device"]``, as plain values."""
    from adaqp.runtime.staged import StagedTransport

    dev = torch.device(cfg["device"])
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    transport = StagedTransport()
    net = bench_all_to_all(rank, world, cfg)
    staged = bench_staged(rank, world, cfg, transport, dev)
    allreduce = bench_allreduce(rank, world, cfg)
    sync = measure_sync(rank, world, cfg, transport, dev)
    mine = bench_interference(rank, world, cfg, transport, dev, staged)
    gathered = all_gather_json(mine)  # JSON over tensors: nothing a peer sends is unpickled
    return {"net": net, "staged": staged, "allreduce": allreduce, "sync": sync, "interference": gathered}


# ---- parent side ------------------------------------------------------------------------------

def gpu_quick_grid() -> Grid:
    """The quick grid plus the sizes of a training run on a GPU (~1e5 rows per rank, 1e6 edges,
    width 128): milliseconds there, so cheap, and no extrapolation by 10x from the CPU sizes."""
    from dataclasses import replace

    from adaqp.runtime.profiling.profiler import MiB, quick_grid

    g = quick_grid()
    return replace(g, spmm=g.spmm + ((100_000, 2_000_000, 128), (200_000, 4_000_000, 128)),
                   gemm=g.gemm + ((100_000, 128, 128), (200_000, 128, 128)),
                   elementwise=g.elementwise + ((100_000, 128), (200_000, 128)),
                   copy_bytes=g.copy_bytes + (64 * MiB,))


GPU_SYNC = {"rows": 100_000, "nnz": 1_000_000, "width": 64, "loop": 1, "reps": 50, "allreduce_floats": 32_768}


def measure_shared_gpu(grid, device: str, ranks=(2, 4), nprocs: int = 2, sync: dict | None = None) -> tuple[dict, dict]:
    """``(links, extra)``: "net@k" per k plus "net" and "allreduce" (from k = ``nprocs``, else the
    smallest k), and in ``extra`` the sync tables, interference reports and staged fits. The
    SpMM loops default to GPU sizes (``sync``, ``grid.interference["loop"]``: tests shrink them)."""
    from adaqp.runtime.launch import spawn

    cuda = device.startswith("cuda")
    cfg = {"device": device if ":" in device or not cuda else f"cuda:{torch.cuda.current_device()}",
           "sizes": list(grid.link_bytes), "allreduce_sizes": list(grid.allreduce_bytes),
           "warmup": grid.warmup, "reps": grid.reps, "budget_s": grid.budget_s,
           # ~ms windows: one GPU SpMM of the quick grid's interference size is ~50 us
           "interference": {"loop": 40, **grid.interference}, "sync": sync or GPU_SYNC}
    got = {k: spawn("adaqp.runtime.profiling.gpu:shared_worker", k, (cfg,), timeout_s=300.0)[0] for k in ranks}
    return fit_shared(got, nprocs)


def fit_shared(got: dict[int, dict], nprocs: int) -> tuple[dict, dict]:
    """Fit what :func:`shared_worker` measured for each k (pure: tests feed it made-up points)."""
    from adaqp.costmodel import fit

    links, errors, staged = {}, {}, {}
    pts = lambda ps: [{k: (r4(v) if k.endswith("_s") else v) for k, v in p.items()} for p in ps]  # noqa: E731
    for k, res in sorted(got.items()):
        for name, key in (("net", f"net@{k}"), ("staged", f"staged@{k}")):
            ps = pts(res[name])
            model, errors[key] = fit.link_model([p["nbytes"] * (k - 1) for p in ps],
                                                [p["median_s"] for p in ps], ps)
            links[key] = model  # staged@k: the network model costs gloo-staged exchanges by it
            if name == "staged":
                staged[str(k)] = {"latency_s": model.latency_s, "bw_Bps": model.bw_Bps, "points": ps}
    base = nprocs if nprocs in got else min(got)
    links["net"] = links[f"net@{base}"]
    ar = pts(got[base]["allreduce"])
    links["allreduce"], errors["allreduce"] = fit.link_model([p["nbytes"] for p in ar],
                                                             [p["median_s"] for p in ar], ar)
    extra = {"errors": errors, "staged_exchange": staged,
             "sync_s": {str(k): r4(res["sync"]["exchange"]) for k, res in got.items()},
             "allreduce_sync_s": {str(k): r4(res["sync"]["allreduce"]) for k, res in got.items()},
             "interference": [r for res in got.values() for r in res["interference"]],
             "shared_ranks": sorted(got)}
    return links, extra
