"""Predicted vs measured: run a grid of configurations on this machine and put the simulator's
prediction (same plan, this machine's measured profile) beside each measured epoch.

One process group per (ranks, link) runs every configuration of that cell back to back
(:func:`adaqp.runtime.run.run_configs`), so the grid pays a launch per cell, not per point.
The prediction never sees the measured run: it comes from the halo plan, the model shape, the
cluster spec of what ran (loopback, or the emulated hosts of ``--link``) and the profile that
``adaqp profile`` measured with micro-benchmarks. Adaptive configurations are predicted with the
BitPlan the run actually solved (it depends on traced row ranges, known only after the fact); they
solve once, after the warm-up epochs, so every measured epoch runs that one plan.

Phases compared (medians over the measured epochs, slowest rank per epoch):
- ``epoch``: wall time of the epoch;
- ``comm``: exposed communication: the wait for messages (with overlap) or the whole blocking
  exchange (without), plus the all-reduce; predicted: the simulator's critical-path share of them;
- ``compute``: the epoch less the exposed communication.

Before anything trains, the profile is completed for the grid (:func:`profile_for_grid`): the
op shapes every workload of the grid asks for (:func:`adaqp.costmodel.shapes.workload_shapes`)
are micro-benchmarked on synthetic tensors and merged into a copy of ``--profile``; predictions
that still need an op outside its measured range are named on stderr and in ``extrapolated``.

The emulated network of each cell is characterised first by a micro-benchmark of the runtime's
exchange on it (dummy bytes, before any training; ``runtime.profiling.ranks.measure_exchange``): the
per-host bandwidth of two hosts swapping and of all-to-alls of 3 .. k hosts go into the cell's
ClusterSpec (``network.bw``, ``network.bw_crowded``), as a measured profile would, instead of the
nominal tbf rate (TCP headers, several flows crowding one NIC each way and the hosts contending
for this machine's cores all take their share).

``rounds`` > 1 measures the whole grid that many times, one round after another, and reports
each configuration's median (:func:`combine_rounds`) with the measured epoch's spread: on a
noisy machine, an error smaller than that spread is noise.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from adaqp.errors import require
from adaqp.schedule import Schedule

DEFAULT_DATASET = "sbm:nodes=12000,classes=8,feat=64,deg=10,seed=0"
# graphs of three input widths (64, 1,433, 256 features) and two degree distributions
DEFAULT_DATASETS = (DEFAULT_DATASET, "cora", "rmat:scale=13,edgefactor=8,feat=256,classes=16,seed=0")
PHASES = ("epoch", "comm", "compute")


@dataclass(frozen=True)
class Grid:
    datasets: tuple[str, ...] = DEFAULT_DATASETS
    ranks: tuple[int, ...] = (2, 3, 4)
    links: tuple[str | None, ...] = ("100mbit", "1gbit")  # None: plain loopback
    schedules: tuple[str, ...] = ("vanilla", "overlap", "quant", "adaqp")
    bits: tuple[str, ...] = ("4", "adaptive")  # for the quantizing schedules
    models: tuple[str, ...] = ("gcn", "sage")
    epochs: int = 16  # 13 measured: an epoch of ranks sharing cores and shaped links varies by +-20 %
    warmup: int = 3
    hiddens: tuple[int, ...] = (64, 128)
    layers: int = 3
    profile: str = "cpu-2core"  # a bundled name or a profile file
    seed: int = 0
    device: str = "cpu"  # cuda: the ranks share the visible GPU(s) (experiments/gpu_check.py)
    timeout_s: float = 600.0  # per cell: a hung rank costs at most this
    rounds: int = 1  # the whole grid measured this many times, one round after another (noise)
    corun_rounds: int = 15  # rounds of the co-run benchmark per workload (runtime.profiling.ranks.CORUN_ROUNDS)

    profile_for: bool = True  # measure the grid's op shapes into the profile before training
    # cold: each op size alone after evicting the caches (profile --for); in-epoch: besides, each
    # cell times its workloads' ops in epoch order right before they train (validate_inepoch)
    op_timing: str = "cold"

    def __post_init__(self) -> None:
        require(self.datasets, "validate needs at least one dataset")
        require(self.hiddens and min(self.hiddens) >= 1, f"hidden widths must be >= 1, got {self.hiddens}")
        require(self.ranks and min(self.ranks) >= 2, "validate needs ranks >= 2 (one rank sends nothing)")
        require(self.epochs > self.warmup >= 1, f"epochs ({self.epochs}) must exceed warmup ({self.warmup}) >= 1")
        require(isinstance(self.rounds, int) and self.rounds >= 1, f"rounds must be >= 1, got {self.rounds!r}")
        require(isinstance(self.corun_rounds, int) and self.corun_rounds >= 1,
                f"corun_rounds must be >= 1, got {self.corun_rounds!r}")
        require(self.op_timing in ("cold", "in-epoch"), f"op_timing must be cold or in-epoch, got {self.op_timing!r}")
        for s in self.schedules:
            Schedule.parse(s)
        for b in self.bits:
            require(b == "adaptive" or b in ("1", "2", "4", "8", "16"), f"bits must be 1|2|4|8|16|adaptive, got {b!r}")
        for m in self.models:
            require(m in ("gcn", "sage", "gat"), f"model must be gcn, sage or gat, got {m!r}")

    def cells(self) -> list[tuple[int, str | None]]:
        return [(r, link) for r in self.ranks for link in self.links]

    def workloads(self) -> list[tuple[str, int]]:
        """(dataset, hidden width): the model shapes the grid covers."""
        return [(d, h) for d in self.datasets for h in self.hiddens]

    def points(self) -> list[tuple[str, str, str]]:
        """(model, schedule, bits) run for every workload in every cell."""
        out = []
        for m in self.models:
            for s in self.schedules:
                sched = Schedule.parse(s)
                # adaptive widths go with overlap (adaqp); quant sends every message at one width
                widths = ("32",) if not sched.quantize else self.bits if sched.overlap else \
                    tuple(b for b in self.bits if b != "adaptive")
                out += [(m, s, b) for b in widths]
        return out

    def size(self) -> int:
        return len(self.cells()) * len(self.workloads()) * len(self.points())


def cluster_for(ranks: int, link: str | None, measured: tuple[float, float, dict] | None = None):
    """The ClusterSpec of what runs: loopback ranks, or one emulated host per rank, with the
    network's ``(latency_s, bw_Bps, bw_crowded)`` as measured when given, else the nominal link."""
    from adaqp.cluster import ClusterSpec, parse_bandwidth_Bps

    if link is None:  # the bundled spec of this machine (its measured loopback), resized
        from adaqp.costmodel.bundled import load_cluster

        return load_cluster("local-cpu").with_ranks(ranks)
    if measured is None:
        return ClusterSpec.emulated(ranks, parse_bandwidth_Bps(link, "--link"))
    # only the bandwidths: the intercept of a fit over 10-100 ms messages is no per-message latency
    # (it soaks up TCP's ramp); small messages pay the profile's measured endpoint latency instead
    spec = ClusterSpec.emulated(ranks, measured[1])
    return replace(spec, name=f"local-cpu-{link}-measured", network=replace(spec.network, bw_crowded=measured[2]))


def measure_network(ranks: int, link: str) -> tuple[float, float, dict[int, float]]:
    """``(latency_s, bw_Bps, bw_crowded)`` of the runtime's exchange on a fresh emulated network
    of this cell: two of its hosts swapping (one flow each way: ``bw_Bps``), and all-to-alls of
    3 .. ``ranks`` of them (n = hosts - 1 flows each way: ``bw_crowded[n]``, ``Network.bw_crowded``).

    Messages of 10 to 100 ms of traffic per peer: smaller ones fit tbf's token bucket and pass at
    memory speed. A fitted rate above the tbf rate is a measurement artefact (a shaped link cannot
    beat its shaper), so the rate is capped there and the cap is reported."""
    import sys

    from adaqp.cluster import parse_bandwidth_Bps
    from adaqp.runtime.profiling.ranks import measure_exchange
    from adaqp.runtime.emulate import EmulatedNetwork

    rate_Bps = parse_bandwidth_Bps(link, "--link")
    sizes = tuple(int(rate_Bps * t) for t in (0.01, 0.03, 0.1))
    fits = {}
    with EmulatedNetwork(ranks, rate_Bps * 8) as net:
        for hosts in range(2, ranks + 1):
            fits[hosts] = measure_exchange(hosts, sizes, netns=net.namespaces[:hosts],
                                           master_addr=net.addresses[0])[:2]
    capped = {}
    for hosts, (_lat, bw) in fits.items():
        if bw > rate_Bps:
            print(f"validate: the exchange on {hosts} of {ranks} hosts at {link} fitted {bw / 1e6:.1f} MB/s, "
                  f"above the link's {rate_Bps / 1e6:.1f} MB/s; using the link rate", file=sys.stderr)
        capped[hosts] = min(bw, rate_Bps)
    crowded = {hosts - 1: bw for hosts, bw in capped.items() if hosts > 2}
    return fits[2][0], capped[2], crowded


def train_configs(grid: Grid, dataset: str, ranks: int, cluster_file: str | None):
    """Every (hidden, point) of one dataset in one cell: one process group runs them all."""
    from adaqp.runtime.config import TrainConfig
    from adaqp.runtime.model import ModelConfig

    cfgs = []
    for hidden, (model, schedule, bits) in ((h, p) for h in grid.hiddens for p in grid.points()):
        cfgs.append(TrainConfig(
            dataset=dataset, nprocs=ranks, model=ModelConfig(model, grid.layers, hidden),
            epochs=grid.epochs, seed=grid.seed, schedule=schedule, bits=bits,
            replan_every=grid.warmup, max_replans=1, cluster=cluster_file or "local-cpu", profile=grid.profile,
            eval_every=grid.epochs, warmup_epochs=grid.warmup, progress=False, timeout_s=grid.timeout_s,
            device=grid.device))
    return cfgs


def measured_phases(records: list[dict], warmup: int, overlap: bool) -> dict:
    """Median over the epochs after warm-up of each phase, slowest rank per epoch. Exposed
    communication: the wait for messages with overlap; the whole exchange without (it blocks)."""
    by_epoch: dict[int, list[dict]] = {}
    for r in records:
        by_epoch.setdefault(r["epoch"], []).append(r)
    kept = sorted(by_epoch)[warmup:] or sorted(by_epoch)

    def med(fn):
        return statistics.median(max(fn(r) for r in by_epoch[e]) for e in kept)

    exposed = lambda r: r.get("wait_s" if overlap else "communicate_s", 0.0) + r.get("allreduce_s", 0.0)  # noqa: E731
    epochs = [max(r["epoch_time_s"] for r in by_epoch[e]) for e in kept]
    q1, q3 = np.percentile(epochs, [25, 75])
    mid = statistics.median(epochs)
    return {"epoch": mid, "comm": med(exposed),
            "compute": med(lambda r: r["epoch_time_s"] - exposed(r)),
            # how much the measured epochs themselves vary: the interquartile range over the median
            "epoch_iqr_pct": float(q3 - q1) / mid * 100 if mid > 0 else float("nan")}


def predicted_phases(stats, shape, schedule: str, bits, cluster, profile) -> tuple[dict, list]:
    """The simulator's phases, and the ``(op, sizes)`` evaluations it made (coverage check)."""
    from adaqp.costmodel.profile import record_ops
    from adaqp.simulator import simulate

    with record_ops() as calls:
        r = simulate(stats, shape, schedule, cluster, profile, bits, trace=False)
    return {"epoch": r.epoch_time_s, "comm": r.exposed_comm_s, "compute": r.compute_time_s}, calls


def _bits_of(cfg, result: dict):
    """What the run sent: its uniform width, or the BitPlan it solved (adaptive)."""
    if cfg.uniform_bits is not None:
        return cfg.uniform_bits
    from adaqp.runtime.trainer import bitplan_from_tensors

    return bitplan_from_tensors(result["bitplan"])


def plan_dir_for(work: Path, dataset: str, ranks: int) -> Path:
    """One partition per (dataset, ranks), shared by the cells of every link."""
    slug = "".join(c if c.isalnum() else "-" for c in dataset).strip("-")[:60]
    return work / "plans" / f"{slug}-r{ranks}"


def run_cell(grid: Grid, ranks: int, link: str | None, work: Path, runner=None, cluster=None,
             calls: list | None = None, corun=None, in_epoch=None) -> list[dict]:
    """Every workload and point of one (ranks, link) cell: measured, predicted, errors per phase.
    ``cluster``: the ClusterSpec of what runs, when the caller knows it (e.g. k ranks sharing one
    GPU). ``calls`` collects the predictions' op evaluations (for the coverage check). ``corun``:
    the co-run slowdowns measured at each workload's step, right before it trains (a
    :class:`.validate_corun.Corun`; CPU ranks sharing the cores); without it the profile's table
    predicts. ``in_epoch``: a :class:`.validate_inepoch.InEpoch` that times each dataset's ops in
    epoch order right before it trains, for its predictions."""
    from adaqp.runtime.run import run_configs

    if cluster is None:
        measured = measure_network(ranks, link) if link is not None and runner is None else None
        cluster = cluster_for(ranks, link, measured)
    cell_dir = work / f"r{ranks}-{link or 'loopback'}"
    cell_dir.mkdir(parents=True, exist_ok=True)
    cluster_file = str(cluster.to_yaml(cell_dir / "cluster.yaml"))
    rows = []
    for dataset in grid.datasets:
        cfgs = train_configs(grid, dataset, ranks, cluster_file)
        plan_dir = plan_dir_for(work, dataset, ranks)
        factors = corun.before(cfgs[0], plan_dir, grid.hiddens) if corun is not None else {}
        prof = None
        if in_epoch is not None:
            from adaqp.data.spec import load_dataset
            from adaqp.runtime.prepare import prepare_plan

            plan_dir.mkdir(parents=True, exist_ok=True)
            prepare_plan(cfgs[0], plan_dir)  # the partition the runs then load
            prof = in_epoch.before(cfgs, plan_dir, load_dataset(dataset), model_shape)
            prof.save(cell_dir / f"profile-in-epoch-{plan_dir.name}.json")  # what this cell predicted with
        results = (runner or run_configs)(cfgs, plan_dir, link)
        rows += _compare(grid, dataset, cfgs, results, plan_dir, cluster, link, calls, factors, prof)
    return rows


def model_shape(cfg, graph):
    """The cost model's ``ModelShape`` of a run's configuration on ``graph``."""
    from adaqp.costmodel.program import ModelShape

    return ModelShape.of(cfg.model, graph.num_features, graph.num_classes)


def _compare(grid, dataset, cfgs, results, plan_dir, cluster, link, calls, corun=None, profile=None) -> list[dict]:
    from adaqp.costmodel.profile import load_profile
    from adaqp.costmodel.workload import PlanStats
    from adaqp.data.spec import load_dataset
    from adaqp.halo import HaloPlan

    halo, graph = HaloPlan.load(plan_dir), load_dataset(dataset)
    stats = PlanStats.from_halo_plan(halo)
    profile = profile if profile is not None else load_profile(grid.profile)
    rows = []
    for i, (cfg, per_rank) in enumerate(zip(cfgs, results)):
        shape = model_shape(cfg, graph)
        meas = measured_phases([r for res in per_rank for r in res["records"]], grid.warmup,
                               Schedule.parse(cfg.schedule).overlap)
        k = str(cfg.nprocs)
        prof = profile
        if corun and cfg.model.hidden in corun:  # measured at this workload's step just before it trained
            prof = profile.with_corun(cfg.nprocs, corun[cfg.model.hidden])
        pred, used = predicted_phases(stats, shape, cfg.schedule, _bits_of(cfg, per_rank[0]), cluster, prof)
        if calls is not None:
            calls.extend(used)
        row = {"dataset": dataset, "features": graph.num_features, "hidden": cfg.model.hidden,
               "ranks": cfg.nprocs, "link": link or "loopback", "model": cfg.model.model,
               "schedule": cfg.schedule, "bits": cfg.bits,
               "net_MBps": cluster.network.bw_Bps / 1e6 if cluster.network else None,
               # what each host's link carried in an all-to-all of every host (bw_crowded)
               "net_all_MBps": (cluster.network.bw_crowded.get(cfg.nprocs - 1, cluster.network.bw_Bps) / 1e6
                                if cluster.network else None),
               "net_latency_us": cluster.network.latency_s * 1e6 if cluster.network else None,
               "corun": prof.corun_by_ranks.get(k) if grid.device == "cpu" else None}
        for ph in PHASES:
            row[f"{ph}_pred_ms"] = pred[ph] * 1e3
            row[f"{ph}_meas_ms"] = meas[ph] * 1e3
            row[f"{ph}_err_pct"] = (pred[ph] / meas[ph] - 1) * 100 if meas[ph] > 0 else float("nan")
        row["epoch_meas_iqr_pct"] = meas["epoch_iqr_pct"]
        row.update(memory_row(stats, shape, _bits_of(cfg, per_rank[0]), per_rank, grid.device, first=i == 0,
                              adaptive=cfg.adaptive, cpu_memory=prof.cpu_memory))
        rows.append(row)
    return rows


def memory_row(stats, shape, bits, per_rank: list[dict], device: str, first: bool, adaptive: bool = False,
               cpu_memory=None) -> dict:
    """Peak memory of the busiest rank, predicted (costmodel/memory.py, with the profile's
    ``cpu_memory`` where it has one) and measured (runtime/memory.py), in MiB. On CPU the
    per-process overhead is predicted for the ``first`` configuration a process group runs only:
    later ones find the modules imported, the library pages resident and the thread pools started."""
    from adaqp.costmodel.memory import peak_memory_bytes

    pred = float(peak_memory_bytes(stats, shape, bits, device, first_in_process=first, adaptive=adaptive,
                                   cpu_memory=cpu_memory).max()) / 2**20
    measured = [r.get("peak_memory_bytes") for r in per_rank]
    meas = max(measured) / 2**20 if None not in measured else float("nan")
    return {"mem_pred_MiB": pred, "mem_meas_MiB": meas,
            "mem_err_pct": (pred / meas - 1) * 100 if meas > 0 else float("nan")}


def grid_bits(grid: Grid) -> tuple[int, ...]:
    """The uniform widths whose coding the grid's predictions cost: its numeric ``bits``, and 2, 4
    and 8 when an adaptive BitPlan may use them (8 when the grid names none)."""
    bits = tuple(int(b) for b in grid.bits if b != "adaptive") or (8,)
    return tuple(sorted(set(bits) | ({2, 4, 8} if "adaptive" in grid.bits else set())))


def profile_for_grid(grid: Grid, work: Path, log=print) -> Grid:
    """Measure every op shape the grid's workloads ask for into a copy of the grid's profile
    (micro-benchmarks on synthetic tensors, before any training) and return the grid with that
    profile. The partitions made here are the ones the runs then load."""
    from adaqp.costmodel.profile import load_profile
    from adaqp.runtime.profiling.profiler import measure_shapes
    from adaqp.costmodel.shapes import count, workload_shapes
    from adaqp.costmodel.workload import PlanStats
    from adaqp.data.spec import load_dataset
    from adaqp.halo import HaloPlan
    from adaqp.runtime.prepare import prepare_plan

    base = load_profile(grid.profile)
    shapes: dict[str, list[dict]] = {}
    bits = grid_bits(grid)
    for dataset in grid.datasets:
        graph = load_dataset(dataset)
        for ranks in grid.ranks:
            cfgs = train_configs(grid, dataset, ranks, None)
            plan_dir = plan_dir_for(work, dataset, ranks)
            plan_dir.mkdir(parents=True, exist_ok=True)
            prepare_plan(cfgs[0], plan_dir, graph)
            stats = PlanStats.from_halo_plan(HaloPlan.load(plan_dir))
            for shape in dict.fromkeys(model_shape(c, graph) for c in cfgs):  # the runs' shapes, once each
                for op, sizes in workload_shapes(stats, shape, bits, base).items():
                    shapes.setdefault(op, []).extend(sizes)
    log(f"validate: measuring {count(shapes)} op shapes of the grid's workloads into the profile (micro-benchmarks, "
        f"before any training)")
    prof = measure_shapes(base, shapes, device=grid.device, progress=True,
                          note=f"adaqp validate grid: {', '.join(grid.datasets)}; hidden {grid.hiddens}")
    path = prof.save(work / "profile.json")
    log(f"validate: profile with the grid's shapes: {path}")
    return replace(grid, profile=str(path))


def run_grid(grid: Grid, work: Path, runner=None, log=print, corun_measure=None) -> tuple[list[dict], list[dict]]:
    """Profile for the grid (``grid.profile_for``), then every cell. Returns the rows and the
    extrapolation records of the predictions (ops needed outside their measured range). On CPU
    each workload's co-run slowdown is measured before it trains (``Corun``; with a
    ``runner`` standing in for training, only when ``corun_measure`` stands in for the benchmark)."""
    from adaqp.costmodel.coverage import warn_extrapolated
    from adaqp.costmodel.profile import load_profile
    from adaqp.experiments.validate_corun import Corun
    from adaqp.experiments.validate_inepoch import InEpoch
    from adaqp.experiments.validate_report import error_stats  # imports this module: not at the top

    if grid.profile_for:
        grid = profile_for_grid(grid, work, log)
    rounds, calls = [], []
    for k in range(grid.rounds):
        rows = []
        with_corun = grid.device == "cpu" and (runner is None or corun_measure is not None)
        corun = Corun(corun_measure, log, grid.corun_rounds) if with_corun else None  # again every round
        in_epoch = InEpoch(grid.profile, grid_bits(grid), log, grid.device) if grid.op_timing == "in-epoch" else None
        for i, (ranks, link) in enumerate(grid.cells()):
            log(f"[{i + 1}/{len(grid.cells())}{f', round {k + 1}/{grid.rounds}' if grid.rounds > 1 else ''}] "
                f"{ranks} ranks, link {link or 'loopback'}: {len(grid.workloads()) * len(grid.points())} configurations")
            cell = run_cell(grid, ranks, link, work, runner, calls=calls, corun=corun, in_epoch=in_epoch)
            for r in cell:
                log(f"    {_short(r['dataset']):>6s} h{r['hidden']:<4d} {r['model']:4s} {r['schedule']:7s} "
                    f"bits {r['bits']:>8s}: measured {r['epoch_meas_ms']:9.1f} ms, predicted "
                    f"{r['epoch_pred_ms']:9.1f} ms ({r['epoch_err_pct']:+.1f} %)")
            rows.extend(cell)
        rounds.append(rows)
        if grid.rounds > 1 and rows:  # each round is what a one-round run would have reported
            st = error_stats(rows)
            log(f"round {k + 1}/{grid.rounds}: median |error| {st['median_abs_err_pct']:.1f} %, "
                f"max {st['max_abs_err_pct']:.1f} %")
    extrapolated = warn_extrapolated(load_profile(grid.profile), calls, log=lambda m: log(m))
    return (rounds[0] if grid.rounds == 1 else combine_rounds(rounds)), extrapolated


ROW_KEY = ("dataset", "hidden", "ranks", "link", "model", "schedule", "bits")


def combine_rounds(rounds: list[list[dict]]) -> list[dict]:
    """One row per configuration from several rounds of the grid: the median over the rounds of
    every measured and predicted figure (each round measured its network again, so predictions
    move too), errors recomputed from those medians, and ``epoch_meas_spread_pct``: the measured
    epoch's (max - min) / median over the rounds, the noise a single round carries;
    ``epoch_meas_dev_pct``: the largest |round / median - 1| of the measured epoch, what a
    prediction equal to the median measurement would miss by in its worst round (the error
    noise alone gives a one-round run); ``epoch_err_worst_round_pct``: the largest
    single-round |epoch error| of the prediction."""
    by_key: dict[tuple, list[dict]] = {}
    for rows in rounds:
        for r in rows:
            by_key.setdefault(tuple(r[k] for k in ROW_KEY), []).append(r)
    out = []
    for rs in by_key.values():
        row = dict(rs[0])
        for k, v in rs[0].items():
            if (k.endswith(("_ms", "_MiB", "_MBps")) or k in ("corun", "epoch_meas_iqr_pct")) and isinstance(v, (int, float)):
                row[k] = statistics.median(r[k] for r in rs)
        for pred, meas, err in [*((f"{ph}_pred_ms", f"{ph}_meas_ms", f"{ph}_err_pct") for ph in PHASES),
                                ("mem_pred_MiB", "mem_meas_MiB", "mem_err_pct")]:
            if err in row:
                row[err] = (row[pred] / row[meas] - 1) * 100 if row[meas] > 0 else float("nan")
        epochs = [r["epoch_meas_ms"] for r in rs]
        row["epoch_meas_spread_pct"] = (max(epochs) - min(epochs)) / row["epoch_meas_ms"] * 100
        # the noise floor: a prediction equal to the median measurement, against its worst round
        row["epoch_meas_dev_pct"] = max(abs(e / row["epoch_meas_ms"] - 1) for e in epochs) * 100
        row["epoch_err_worst_round_pct"] = max(abs(r["epoch_err_pct"]) for r in rs)
        row["rounds"] = len(rs)
        out.append(row)
    return out


def _short(dataset: str) -> str:
    return dataset.split(":")[0]


def quick(grid: Grid) -> Grid:
    """About a dozen configurations in a few minutes: the first dataset and hidden width."""
    links = grid.links if len(grid.links) < 2 else (grid.links[0], grid.links[-1])
    return replace(grid, datasets=grid.datasets[:1], hiddens=grid.hiddens[:1], ranks=(2, 4), links=links,
                   bits=("2", "adaptive"), models=grid.models[:1], schedules=("vanilla", "adaqp"))


def check_links(grid: Grid) -> None:
    """Refuse before any run when a shaped link is asked for and cannot be emulated here."""
    if any(link is not None for link in grid.links):
        from adaqp.runtime.emulate import check_available

        check_available()
