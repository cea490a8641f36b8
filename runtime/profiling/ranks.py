"""The link side of ``adaqp profile``: benchmarks on a real process group, their fits, and the
host <-> device copies.

``links_worker`` runs in every rank started by :func:`adaqp.runtime.launch.spawn` (it must be a
module-level function that a fresh interpreter can import by name). It times, on CPU tensors
over the group's backend (Gloo here):

* ``all_to_all``: the runtime's own exchange (:func:`adaqp.runtime.transport.duplex_all_to_all`)
  with ``nbytes`` to every peer and none to itself (the runtime's exchanger never sends to
  itself), all ranks at once;
* ``p2p``: per ordered pair ``s->r``, ``s`` sends ``nbytes`` and ``r`` answers with a 1-byte ack
  while the other ranks wait; the points are these round trips, so the fitted intercept holds two
  one-way latencies (the parent halves it; subtracting a separately measured 1-byte round trip
  from each time instead gives negative times: both are noisy at small sizes);
* ``allreduce``: ``all_reduce`` (sum) of an fp32 buffer of ``nbytes``;
* ``interference``: a CSR SpMM timed alone, then while this rank's async exchange
  is in flight (the runtime's overlap), per rank.

Every rank times every rep; a collective is as slow as its slowest rank, so the per-rep times are
reduced with MAX over ranks before the statistics. :func:`measure_links` (parent side) spawns
the ranks and fits the links; :func:`measure_copies` times CUDA host <-> device copies.
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np
import torch
import torch.distributed as dist

from adaqp.runtime.objects import all_gather_json
from adaqp.runtime.transport import duplex_all_to_all

MORE_REPS = 5


def stats(ts) -> tuple[float, float, float]:
    """(median, p10, p90) of a list of seconds."""
    a = np.asarray(ts, float)
    return float(np.median(a)), float(np.percentile(a, 10)), float(np.percentile(a, 90))


def r4(v: float) -> float:
    return float(f"{v:.4g}")


def n_reps(first_s: float, reps: int, budget_s: float) -> int:
    """Repetitions within ``budget_s``: at least 3, up to ``MORE_REPS x reps`` for cheap sizes,
    whose times have the heaviest tails (a descheduled thread costs a scheduler tick, ~4 ms)."""
    return int(max(3, min(MORE_REPS * reps, budget_s / max(first_s, 1e-9))))


def _agree_reps(first_s: float, reps: int, budget_s: float) -> int:
    t = torch.tensor([first_s], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)  # the same number everywhere, or collectives hang
    return n_reps(float(t), reps, budget_s)


def max_over_ranks(ts: list[float]) -> list[float]:
    """Each value's MAX over the ranks of the group (a collective is as slow as its slowest rank)."""
    t = torch.tensor(ts, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def timed(fn, cfg) -> list[float]:
    """Warm up, agree on the repetitions, time each one after a barrier; MAX over ranks."""
    first = 0.0
    for _ in range(max(1, cfg["warmup"])):
        dist.barrier()
        t0 = time.perf_counter()
        fn()
        first = time.perf_counter() - t0
    n = _agree_reps(first, cfg["reps"], cfg["budget_s"])
    ts = []
    for _ in range(n):
        dist.barrier()
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return max_over_ranks(ts)


def a2a_buffers(rank: int, world: int, nbytes: int):
    """(send, recv, splits) of an exchange with ``nbytes`` to every peer and none to itself."""
    splits = [0 if p == rank else nbytes for p in range(world)]
    total = nbytes * (world - 1)
    send = torch.randint(0, 255, (total,), dtype=torch.uint8)
    return send, torch.empty(total, dtype=torch.uint8), splits


def bench_all_to_all(rank, world, cfg) -> list[dict]:
    out = []
    for nb in cfg["sizes"]:
        send, recv, splits = a2a_buffers(rank, world, nb)
        ts = timed(lambda: duplex_all_to_all(recv, send, splits, splits).wait(), cfg)
        out.append({"nbytes": nb, **dict(zip(("median_s", "p10_s", "p90_s"), stats(ts)))})
    return out


def _pingpong(rank, s, r, buf, ack) -> None:
    if rank == s:
        dist.send(buf, r)
        dist.recv(ack, r)
    elif rank == r:
        dist.recv(buf, s)
        dist.send(ack, s)


def bench_p2p(rank, world, cfg) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    ack = torch.zeros(1, dtype=torch.uint8)
    for s in range(world):
        for r in range(world):
            if s == r:
                continue
            pts = []
            for nb in cfg["sizes"]:
                buf = torch.zeros(nb, dtype=torch.uint8)
                ts = timed(partial(_pingpong, rank, s, r, buf, ack), cfg)
                pts.append({"nbytes": nb, **dict(zip(("median_s", "p10_s", "p90_s"), stats(ts)))})
            out[f"{s}->{r}"] = pts
    return out


def bench_allreduce(rank, world, cfg) -> list[dict]:
    out = []
    for nb in cfg["allreduce_sizes"]:
        g = torch.ones(max(1, nb // 4), dtype=torch.float32)
        ts = timed(partial(dist.all_reduce, g), cfg)
        out.append({"nbytes": nb, **dict(zip(("median_s", "p10_s", "p90_s"), stats(ts)))})
    return out


def random_csr(rows: int, nnz: int, seed: int = 0):
    """(indptr, indices, values) of a square CSR with ``nnz // rows`` uniformly random columns per
    row, sorted as scipy builds them; values ``1/deg`` like a mean aggregation."""
    rng = np.random.default_rng(seed)
    deg = max(1, nnz // rows)
    idx = np.sort(rng.integers(0, rows, size=(rows, deg)), axis=1).ravel()
    return np.arange(rows + 1) * deg, idx, np.full(idx.size, 1.0 / deg, np.float32)


def _spmm_time(a, x, bufs=None, barrier: bool = True) -> tuple[float, bool]:
    """One SpMM's seconds, with an async all_to_all over ``bufs`` (send, recv, splits) in flight
    (None: alone), and whether the transfer was still running when the SpMM ended."""
    from adaqp.runtime.aggregate import spmm
    from adaqp.runtime.profiling.profiler import evict_caches

    evict_caches()  # timed cold, as the profile's ops are: the ratio is comm's effect alone
    if barrier:
        dist.barrier()
    work = None if bufs is None else duplex_all_to_all(bufs[1], bufs[0], bufs[2], bufs[2])
    t0 = time.perf_counter()
    spmm(a, x)
    t = time.perf_counter() - t0
    busy = work is not None and not work.is_completed()
    if work is not None:
        work.wait()
    return t, busy


def bench_interference(rank, world, cfg, a2a_points) -> dict:
    """SpMM alone vs. with this rank's async all_to_all in flight, alternating so that drift hits
    both alike; ratio per rep = overlapped / alone. The buffer is sized from the measured
    all-to-all speed so that the transfer outlasts the SpMM (``comm_outlasted_frac`` checks).
    "alone" means no communication, with every rank computing, as in training; ``solo_s`` times
    the SpMM with the other ranks idle (the way the compute ops are profiled)."""
    from adaqp.runtime.aggregate import csr_tensor

    ic = cfg["interference"]
    rows = ic["rows"]
    a = csr_tensor(*random_csr(rows, ic["nnz"], seed=rank), (rows, rows), "cpu")
    x = torch.randn(rows, ic["width"], generator=torch.Generator().manual_seed(rank))
    warm = max(_spmm_time(a, x)[0] for _ in range(2))
    big = a2a_points[-1]
    nb = float(min(ic["max_bytes"], max(1 << 20, 3.0 * warm * big["nbytes"] / big["median_s"])))
    nb = int(max_over_ranks([nb])[0])  # splits must agree across ranks
    bufs = a2a_buffers(rank, world, nb)
    report = interference_report(rank, world, ic["reps"], nb, alone=lambda: _spmm_time(a, x)[0],
                                 overlapped=lambda: _spmm_time(a, x, bufs),
                                 solo=lambda: _spmm_time(a, x, barrier=False)[0])
    return {**report, "threads": torch.get_num_threads()}


def interference_report(rank: int, world: int, reps: int, nb: int, alone, overlapped, solo) -> dict:
    """``reps`` alternating timings of a compute loop alone and with this rank's exchange in
    flight (``overlapped()`` returns (seconds, the exchange outlasted the loop)), then the loop
    with the other ranks idle (``solo``). Per rank (not MAX-reduced): the factor is about this
    rank's compute, not the collective."""
    t_alone, t_overlap, outlasted = [], [], 0
    for _ in range(reps):  # alternating, so that drift hits both alike
        t_alone.append(alone())
        t, busy = overlapped()
        t_overlap.append(t)
        outlasted += busy
    # the same loop with the other ranks idle: how much computing side by side costs already
    t_solo = []
    for r in range(world):
        for _ in range(max(3, reps // 2)):
            dist.barrier()
            if r == rank:
                t_solo.append(solo())
    return {"rank": rank, "solo_s": stats(t_solo), "alone_s": stats(t_alone), "overlap_s": stats(t_overlap),
            "ratios": [o / s for o, s in zip(t_overlap, t_alone)], "comm_bytes_per_peer": nb,
            "comm_outlasted_frac": outlasted / len(t_overlap)}


def links_worker(rank: int, world: int, cfg: dict) -> dict:
    """Everything the parent needs from the group, as plain lists and dicts."""
    a2a = bench_all_to_all(rank, world, cfg)
    p2p = bench_p2p(rank, world, cfg)  # MAX-reduced like the rest: identical on every rank
    allreduce = bench_allreduce(rank, world, cfg)
    mine = bench_interference(rank, world, cfg, a2a)
    gathered = all_gather_json(mine)  # JSON over tensors: nothing a peer sends is unpickled
    return {"all_to_all": a2a, "p2p": p2p, "allreduce": allreduce, "interference": gathered,
            "threads": torch.get_num_threads(), "backend": dist.get_backend()}


# ---- parent side: spawn the ranks, fit what they measured ----------------------------------

def measure_links(grid, nprocs: int) -> tuple[dict, dict]:
    """Links fitted from a real process group, and the raw interference reports."""
    from adaqp.costmodel import fit
    from adaqp.runtime.launch import spawn

    cfg = {"sizes": list(grid.link_bytes), "allreduce_sizes": list(grid.allreduce_bytes),
           "warmup": grid.warmup, "reps": grid.reps, "budget_s": grid.budget_s,
           "interference": dict(grid.interference)}
    res = spawn("adaqp.runtime.profiling.ranks:links_worker", nprocs, (cfg,), timeout_s=600.0)[0]

    def pts(ps):
        return [{k: (r4(v) if k.endswith("_s") else v) for k, v in p.items()} for p in ps]

    pairs, errs = {}, {}
    for key, ps in res["p2p"].items():  # round trips with a 1-byte ack: halve the intercept
        lat, bw, err = fit.fit_link([p["nbytes"] for p in ps], [p["median_s"] for p in ps])
        pairs[key], errs[f"net {key}"] = (lat / 2, bw), err
    links = {}
    for name, ps in (("net", res["all_to_all"]), ("allreduce", res["allreduce"])):
        ps = pts(ps)
        links[name], errs[name] = fit.link_model([p["nbytes"] for p in ps], [p["median_s"] for p in ps],
                                                 ps, pairs if name == "net" else None)
    p2p_points = {k: pts(v) for k, v in res["p2p"].items()}
    return links, {"errors": errs, "interference": res["interference"], "p2p_points": p2p_points,
                   "rank_threads": res["threads"], "backend": res["backend"]}


def interference_summary(reports: list[dict]) -> dict:
    """Pooled per-rep ratios (overlapped / alone median) of every rank; factor = their median,
    clamped below at 1.0 (a factor < 1 is noise: overlap cannot speed compute up)."""
    ratios = np.concatenate([r["ratios"] for r in reports])
    raw = float(np.median(ratios))
    corun = [r["alone_s"][0] / r["solo_s"][0] for r in reports if "solo_s" in r]
    return {"factor": max(1.0, raw), "raw_median": raw, "clamped": raw < 1.0,
            "p10": float(np.percentile(ratios, 10)), "p90": float(np.percentile(ratios, 90)),
            # not part of the factor: compute slows by this much when all ranks compute at once
            "corun_factor": float(np.median(corun)) if corun else None,
            "per_rank": [{k: r[k] for k in ("rank", "solo_s", "alone_s", "overlap_s", "comm_bytes_per_peer",
                                            "comm_outlasted_frac") if k in r} for r in reports]}


def measure_copies(grid, device: str) -> dict:
    """Host <-> device copies (CUDA only): pinned and pageable host buffers, each direction."""
    from adaqp.costmodel import fit
    from adaqp.runtime.profiling.profiler import time_fn

    links = {}
    for name in ("h2d_pinned", "d2h_pinned", "h2d_pageable", "d2h_pageable"):
        pinned = name.endswith("pinned")
        nbs, ps = [], []
        for nb in grid.copy_bytes:
            host = torch.empty(nb, dtype=torch.uint8, pin_memory=pinned)
            dev = torch.empty(nb, dtype=torch.uint8, device=device)
            src, dst = (host, dev) if name.startswith("h2d") else (dev, host)
            med, p10, p90 = (r4(v) for v in time_fn(partial(dst.copy_, src, non_blocking=pinned), device,
                                                     grid.warmup, grid.reps, grid.budget_s))
            nbs.append(nb)
            ps.append({"nbytes": nb, "median_s": med, "p10_s": p10, "p90_s": p90})
        links[name], _ = fit.link_model(nbs, [p["median_s"] for p in ps], ps)
    return links


def exchange_worker(rank: int, world: int, cfg: dict) -> list[dict]:
    """Only the exchange benchmark (``adaqp validate`` runs it on each emulated network)."""
    return bench_all_to_all(rank, world, cfg)


def measure_exchange(nprocs: int, sizes=(65536, 262144, 1048576), netns=None, master_addr="127.0.0.1",
                     reps: int = 5) -> tuple[float, float, list[dict]]:
    """``(latency_s, per-rank bytes/s, points)`` of the runtime's exchange with ``nbytes`` to every
    peer: seconds = latency + (P - 1) nbytes / bw, so ``bw`` is what one rank's link delivers
    while all ranks exchange (for emulated hosts: their NIC, TCP and shared cores together)."""
    from adaqp.costmodel import fit
    from adaqp.runtime.launch import spawn

    cfg = {"sizes": list(sizes), "warmup": 2, "reps": reps, "budget_s": 2.0}
    pts = spawn("adaqp.runtime.profiling.ranks:exchange_worker", nprocs, (cfg,), netns=netns,
                master_addr=master_addr, timeout_s=300.0)[0]
    lat, bw, _ = fit.fit_link([p["nbytes"] * (nprocs - 1) for p in pts], [p["median_s"] for p in pts])
    return lat, bw, pts


def paired_extra(pairs, idle) -> tuple[float, float]:
    """``(gap, extra)`` from ``(bare, loaded)`` seconds per iteration of paired blocks and the
    step's idle seconds: the median bare block, and the median of the pairs' differences less the
    median idle cost (at least 0)."""
    bare = np.asarray([b for b, _ in pairs], float)
    diff = np.asarray([lo - b for b, lo in pairs], float)
    return float(np.median(bare)), max(0.0, float(np.median(diff)) - float(np.median(idle)))


SYNC_BLOCK = 10  # SpMM iterations per timed block of the sync benchmark


def loaded_extra(step, a, x, reps: int, block: int = SYNC_BLOCK) -> tuple[float, float]:
    """``(gap, extra)``: seconds of one SpMM of the loop every rank runs at once (the compute
    between two steps), and the seconds ``step`` adds per iteration to that loop, less what it
    costs with nothing else running (the link models already hold that); each the MAX over ranks.

    The loop runs in pairs of blocks of ``block`` iterations, one block without ``step`` and one
    with it, the order alternating from pair to pair; ``extra`` is the median over the pairs of
    their difference. A virtual machine's core can run at half speed for a second or two while
    its host is busy elsewhere: such a spell moves the few pairs it falls on, where it would move
    a whole loop timed in one piece."""
    from adaqp.runtime.aggregate import spmm

    def timed_block(with_step: bool) -> float:
        t0 = time.perf_counter()
        for _ in range(block):
            spmm(a, x)
            if with_step:
                step()
        return (time.perf_counter() - t0) / block

    pairs = []
    for i in range(max(3, 2 * reps // block)):  # 2 x reps iterations with the step, 2 x reps without
        dist.barrier()
        first = timed_block(i % 2 == 1)
        second = timed_block(i % 2 == 0)
        pairs.append((second, first) if i % 2 else (first, second))
    idle = []
    for _ in range(reps):
        dist.barrier()
        t0 = time.perf_counter()
        step()
        idle.append(time.perf_counter() - t0)
    got = torch.tensor(paired_extra(pairs, idle), dtype=torch.float64)
    dist.all_reduce(got, op=dist.ReduceOp.MAX)
    return float(got[0]), float(got[1])


# (rows, nnz) of the SpMM between two synchronising steps in ``measure_sync``: from a tenth of a
# millisecond to a few milliseconds of compute on one core (a small graph's layer to a large one's)
SYNC_SPMM = ((1_500, 15_000), (5_000, 50_000), (20_000, 200_000))


def sync_worker(rank: int, world: int, cfg: dict) -> dict[str, list[list[float]]]:
    """The delay a synchronising step adds while every rank computes between steps (ranks
    time-sharing cores wait for each other to be scheduled): a tiny exchange, and an all-reduce
    of a gradient-sized buffer, each after every SpMM of a loop; for each SpMM size of
    :data:`SYNC_SPMM`, ``[gap_s, extra_s]``."""
    from adaqp.runtime.aggregate import csr_tensor

    splits = [0 if p == rank else 64 for p in range(world)]
    send = torch.zeros(64 * (world - 1), dtype=torch.uint8)
    recv = torch.empty_like(send)
    grad = torch.zeros(cfg["allreduce_floats"])
    out: dict[str, list[list[float]]] = {"exchange": [], "allreduce": []}
    for rows, nnz in cfg["spmm"]:
        a = csr_tensor(*random_csr(rows, nnz, seed=rank), (rows, rows), "cpu")
        x = torch.randn(rows, cfg["width"])
        out["exchange"].append(list(loaded_extra(lambda: duplex_all_to_all(recv, send, splits, splits).wait(),
                                                 a, x, cfg["reps"])))
        out["allreduce"].append(list(loaded_extra(lambda: dist.all_reduce(grad), a, x, cfg["reps"])))
    return out


def measure_sync(max_ranks: int, reps: int = 100,
                 spmm: tuple = SYNC_SPMM) -> tuple[dict[str, float], dict[str, float], dict]:
    """``HardwareProfile.sync_s``, ``allreduce_sync_s`` and ``sync_by_gap``: for 2 .. ``max_ranks``
    ranks on this host (each with cores / k threads, as the launcher gives them), the delay an
    exchange and an all-reduce (32k floats) add under load, beyond their cost on an idle host, by
    the compute between two of them (``spmm``, :data:`SYNC_SPMM` by default); ``sync_s`` / ``allreduce_sync_s`` keep
    the figure after the longest compute."""
    import os

    from adaqp.runtime.launch import spawn

    cores = os.cpu_count() or 1
    cfg = {"spmm": tuple(spmm), "width": 32, "reps": reps, "allreduce_floats": 32_768}
    exchange, allreduce, by_gap = {}, {}, {"exchange": {}, "allreduce": {}}
    for k in range(2, max_ranks + 1):
        env = {"OMP_NUM_THREADS": str(max(1, cores // k))}
        got = spawn("adaqp.runtime.profiling.ranks:sync_worker", k, (cfg,), env=env, timeout_s=300.0)[0]
        for step in ("exchange", "allreduce"):
            by_gap[step][str(k)] = sorted([r4(g), r4(e)] for g, e in got[step])
        exchange[str(k)], allreduce[str(k)] = r4(got["exchange"][-1][1]), r4(got["allreduce"][-1][1])
    return exchange, allreduce, by_gap


# alternations of alone / together in one co-run measurement: a round's ratio of k ranks past
# the cores is unstable (within a window one rank may hold a core alone while two share the
# other), and 5 rounds moved the figure of 3 ranks at one step by 0.18 between sittings, 15 by 0.06
CORUN_ROUNDS = 15
CORUN_WINDOW_S = 0.25  # each rank's steps are counted over this long


def corun_worker(rank: int, world: int, cfg: dict) -> dict[str, list[float]]:
    """A training-like step (a SpMM, then a dense layer) run back to back for a window of
    ``window_s``, by each rank in turn with the others idle (the way ops are profiled) and by
    every rank at once; per round, the ratio of the seconds per step together to alone is how
    much slower a rank computes beside ``world - 1`` others on this host: memory bandwidth and
    caches shared, and cores time-sliced past their count.

    Throughput over a window, not one step timed after a barrier: a step of a small graph is
    shorter than a scheduler slice, so ranks time-sharing a core would take turns and each
    step, timed alone, would read no slowdown. The steps run warm, one after another as the
    ops of an epoch do; evicting the caches before each step would make one rank's eviction
    traffic part of another's step."""
    from adaqp.runtime.aggregate import csr_tensor, spmm

    a = csr_tensor(*random_csr(cfg["rows"], cfg["nnz"], seed=rank), (cfg["rows"], cfg["rows"]), "cpu")
    x = torch.randn(cfg["rows"], cfg["width"], generator=torch.Generator().manual_seed(rank))
    lin = torch.nn.Linear(cfg["width"], cfg["width"])

    def per_step() -> float:
        n, t0 = 0, time.perf_counter()
        with torch.no_grad():
            while True:
                lin(spmm(a, x))
                n += 1
                took = time.perf_counter() - t0
                if took >= cfg["window_s"]:
                    return took / n

    with torch.no_grad():
        for _ in range(3):
            lin(spmm(a, x))
    # rounds of (alone, together): a ratio per round, so that a drift of the machine's speed
    # (other tenants of a virtual machine) moves one round, not the whole figure
    ratios = []
    for _ in range(cfg["rounds"]):
        solo = 0.0
        for r in range(world):
            dist.barrier()
            if r == rank:
                solo = per_step()
        dist.barrier()
        ratios.append(per_step() / solo)
    return {"ratios": ratios}


def measure_corun(max_ranks: int, rows: int = 50_000, nnz: int = 400_000, width: int = 64,
                  ranks=None, rounds: int = CORUN_ROUNDS, window_s: float = CORUN_WINDOW_S) -> dict[str, float]:
    """``HardwareProfile.corun_by_ranks``: for 2 .. ``max_ranks`` ranks on this host (or the rank
    counts ``ranks``), each with cores / k threads as the launcher gives them, how much slower a
    rank computes while all of them compute (:func:`corun_worker`, a SpMM of ``rows`` x ``rows``
    with ``nnz`` non-zeros at ``width``; :func:`corun_factor` of its rounds)."""
    import os

    from adaqp.runtime.launch import spawn

    cores = os.cpu_count() or 1
    cfg = {"rows": rows, "nnz": nnz, "width": width, "rounds": rounds, "window_s": window_s}
    out = {}
    for k in (ranks if ranks is not None else range(2, max_ranks + 1)):
        env = {"OMP_NUM_THREADS": str(max(1, cores // k))}
        got = spawn("adaqp.runtime.profiling.ranks:corun_worker", k, (cfg,), env=env, timeout_s=300.0)
        out[str(k)] = r4(corun_factor([g["ratios"] for g in got]))
    return out


def corun_factor(ratios) -> float:
    """The co-run slowdown from ``ratios[rank][round]`` (seconds per step together / alone): per
    round, the one slowdown that, given to every rank, does the same work in the same time as
    the ranks did (k over the sum of their speeds, 1 / ratio); the median over the rounds, at
    least 1 (a rank does not run faster because others compute: below 1 is noise).

    Why not the median rank: k ranks past the cores are not shared evenly within a window (one
    may hold a core alone while two share the other: ratios near 1, 2 and 2), and the median of
    such a mix jumps between its modes from one sitting to the next; the simulator shares the
    cores evenly among the ranks computing (``simulator.compute``), which is this figure."""
    r = np.asarray(ratios, dtype=np.float64)
    per_round = r.shape[0] / (1.0 / r).sum(0)
    return max(1.0, float(np.median(per_round)))


def corun_at(ranks: int, rows: int, nnz: int, width: int, rounds: int = CORUN_ROUNDS) -> float:
    """``corun_by_ranks[ranks]`` at one step size (a workload's: ``costmodel.shapes.corun_step``)."""
    return measure_corun(ranks, rows=rows, nnz=nnz, width=width, ranks=[ranks], rounds=rounds)[str(ranks)]
