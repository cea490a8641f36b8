"""Predicted vs measured: run a grid of configurations on this machine and put the simulator's
prediction (same plan, this machine's measured profile) beside each measured epoch.

One process group per (ranks, link) runs every configuration of that cell back to back
(:func:`adaqp.runtime.run.run_configs`), so the grid pays a launch per cell, not per point.
The prediction never sees the measured run: it comes from the halo plan, the model shape, the
cluster spec of what ran (loopback, or the emulated hosts of ``--link``) and the profile that
``adaqp profile`` measured with micro-benchmarks. Adaptive configurations are predicted with the
BitPlan the run actually solved (it depends on traced row ranges, known only after the fact).

Phases compared (medians over the measured epochs, slowest rank per epoch):
- ``epoch``: wall time of the epoch;
- ``comm``: exposed communication: the wait for messages (with overlap) or the whole blocking
  exchange (without), plus the all-reduce; predicted: the simulator's critical-path share of them;
- ``compute``: the epoch less the exposed communication.

The emulated network of each cell is characterised first by a micro-benchmark of the runtime's
exchange on it (dummy bytes, before any training; ``profiler_ranks.measure_exchange``): its
effective per-host bandwidth and latency go into the cell's ClusterSpec, as a measured profile
would, instead of the nominal tbf rate (TCP headers, contention of several flows for one NIC and
of the hosts for this machine's cores all take their share).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from pathlib import Path

from adaqp.errors import require
from adaqp.schedule import Schedule

DEFAULT_DATASET = "sbm:nodes=12000,classes=8,feat=64,deg=10,seed=0"
PHASES = ("epoch", "comm", "compute")


@dataclass(frozen=True)
class Grid:
    dataset: str = DEFAULT_DATASET
    ranks: tuple[int, ...] = (2, 3, 4)
    links: tuple[str | None, ...] = ("100mbit", "1gbit")  # None: plain loopback
    schedules: tuple[str, ...] = ("vanilla", "overlap", "quant", "adaqp")
    bits: tuple[str, ...] = ("2", "4", "8", "adaptive")  # for the quantizing schedules
    models: tuple[str, ...] = ("gcn", "sage")
    epochs: int = 10
    warmup: int = 3
    hidden: int = 64
    layers: int = 3
    profile: str = "cpu-2core"  # a bundled name or a profile file
    seed: int = 0
    device: str = "cpu"  # cuda: the ranks share the visible GPU(s) (experiments/gpu_check.py)
    timeout_s: float = 600.0  # per cell: a hung rank costs at most this

    def __post_init__(self) -> None:
        require(self.ranks and min(self.ranks) >= 2, "validate needs ranks >= 2 (one rank sends nothing)")
        require(self.epochs > self.warmup >= 1, f"epochs ({self.epochs}) must exceed warmup ({self.warmup}) >= 1")
        for s in self.schedules:
            Schedule.parse(s)
        for b in self.bits:
            require(b == "adaptive" or b in ("1", "2", "4", "8", "16"), f"bits must be 1|2|4|8|16|adaptive, got {b!r}")
        for m in self.models:
            require(m in ("gcn", "sage"), f"model must be gcn or sage, got {m!r}")

    def cells(self) -> list[tuple[int, str | None]]:
        return [(r, link) for r in self.ranks for link in self.links]

    def points(self) -> list[tuple[str, str, str]]:
        """(model, schedule, bits) run in every cell."""
        out = []
        for m in self.models:
            for s in self.schedules:
                for b in (self.bits if Schedule.parse(s).quantize else ("32",)):
                    out.append((m, s, b))
        return out

    def size(self) -> int:
        return len(self.cells()) * len(self.points())


def cluster_for(ranks: int, link: str | None, measured: tuple[float, float] | None = None):
    """The ClusterSpec of what runs: loopback ranks, or one emulated host per rank, with the
    network's ``(latency_s, bw_Bps)`` as measured when given, else the nominal link."""
    from adaqp.cluster import ClusterSpec, parse_bandwidth_Bps

    if link is None:  # the bundled spec of this machine (its measured loopback), resized
        from adaqp.costmodel.bundled import load_cluster

        return load_cluster("local-cpu").with_ranks(ranks)
    if measured is None:
        return ClusterSpec.emulated(ranks, parse_bandwidth_Bps(link, "--link"))
    # only the bandwidth: the intercept of a fit over 10-100 ms messages is no per-message latency
    # (it soaks up TCP's ramp); small messages pay the profile's measured endpoint latency instead
    return replace(ClusterSpec.emulated(ranks, measured[1]), name=f"local-cpu-{link}-measured")


def measure_network(ranks: int, link: str) -> tuple[float, float]:
    """``(latency_s, bw_Bps)`` of the runtime's exchange on a fresh emulated network of this cell.

    Messages of 10 to 100 ms of traffic per peer: smaller ones fit tbf's token bucket and pass at
    memory speed. A fitted rate above the tbf rate is a measurement artefact (a shaped link cannot
    beat its shaper), so the rate is capped there and the cap is reported."""
    import sys

    from adaqp.cluster import parse_bandwidth_Bps
    from adaqp.costmodel.profiler_ranks import measure_exchange
    from adaqp.runtime.emulate import EmulatedNetwork

    rate_Bps = parse_bandwidth_Bps(link, "--link")
    sizes = tuple(int(rate_Bps * t) for t in (0.01, 0.03, 0.1))
    with EmulatedNetwork(ranks, rate_Bps * 8) as net:
        lat, bw, _ = measure_exchange(ranks, sizes, netns=net.namespaces, master_addr=net.addresses[0])
    if bw > rate_Bps:
        print(f"validate: the exchange on {ranks} hosts at {link} fitted {bw / 1e6:.1f} MB/s, above the "
              f"link's {rate_Bps / 1e6:.1f} MB/s; using the link rate", file=sys.stderr)
        bw = rate_Bps
    return lat, bw


def train_configs(grid: Grid, ranks: int, cluster_file: str | None):
    from adaqp.runtime.config import TrainConfig
    from adaqp.runtime.model import ModelConfig

    cfgs = []
    for model, schedule, bits in grid.points():
        cfgs.append(TrainConfig(
            dataset=grid.dataset, nprocs=ranks, model=ModelConfig(model, grid.layers, grid.hidden),
            epochs=grid.epochs, seed=grid.seed, schedule=schedule, bits=bits,
            replan_every=grid.warmup, cluster=cluster_file or "local-cpu", profile=grid.profile,
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
    return {"epoch": med(lambda r: r["epoch_time_s"]), "comm": med(exposed),
            "compute": med(lambda r: r["epoch_time_s"] - exposed(r))}


def predicted_phases(stats, shape, schedule: str, bits, cluster, profile) -> dict:
    from adaqp.simulator import simulate

    r = simulate(stats, shape, schedule, cluster, profile, bits, trace=False)
    return {"epoch": r.epoch_time_s, "comm": r.exposed_comm_s, "compute": r.compute_time_s}


def _bits_of(cfg, result: dict):
    """What the run sent: its uniform width, or the BitPlan it solved (adaptive)."""
    if cfg.uniform_bits is not None:
        return cfg.uniform_bits
    from adaqp.runtime.trainer import bitplan_from_tensors

    return bitplan_from_tensors(result["bitplan"])


def run_cell(grid: Grid, ranks: int, link: str | None, work: Path, runner=None, cluster=None) -> list[dict]:
    """Every point of one (ranks, link) cell: measured, predicted, errors per phase. ``cluster``:
    the ClusterSpec of what runs, when the caller knows it (e.g. k ranks sharing one GPU)."""
    from adaqp.costmodel.profile import load_profile
    from adaqp.costmodel.program import ModelShape
    from adaqp.costmodel.workload import PlanStats
    from adaqp.data.spec import load_dataset
    from adaqp.halo import HaloPlan
    from adaqp.runtime.run import run_configs

    if cluster is None:
        measured = measure_network(ranks, link) if link is not None and runner is None else None
        cluster = cluster_for(ranks, link, measured)
    cell_dir = work / f"r{ranks}-{link or 'loopback'}"
    cell_dir.mkdir(parents=True, exist_ok=True)
    cluster_file = str(cluster.to_yaml(cell_dir / "cluster.yaml"))
    cfgs = train_configs(grid, ranks, cluster_file)
    plan_dir = cell_dir / "plan"
    results = (runner or run_configs)(cfgs, plan_dir, link)
    halo, graph = HaloPlan.load(plan_dir), load_dataset(grid.dataset)
    stats, profile = PlanStats.from_halo_plan(halo), load_profile(grid.profile)
    rows = []
    for cfg, per_rank in zip(cfgs, results):
        widths = cfg.model.widths(graph.num_features, graph.num_classes)
        shape = ModelShape(cfg.model.model, tuple(widths), cfg.model.layer_norm, cfg.model.dropout > 0)
        bits = _bits_of(cfg, per_rank[0])
        meas = measured_phases([r for res in per_rank for r in res["records"]], grid.warmup,
                               Schedule.parse(cfg.schedule).overlap)
        pred = predicted_phases(stats, shape, cfg.schedule, bits, cluster, profile)
        row = {"ranks": ranks, "link": link or "loopback", "model": cfg.model.model,
               "schedule": cfg.schedule, "bits": cfg.bits,
               "net_MBps": cluster.network.bw_Bps / 1e6 if cluster.network else None,
               "net_latency_us": cluster.network.latency_s * 1e6 if cluster.network else None}
        for ph in PHASES:
            row[f"{ph}_pred_ms"] = pred[ph] * 1e3
            row[f"{ph}_meas_ms"] = meas[ph] * 1e3
            row[f"{ph}_err_pct"] = (pred[ph] / meas[ph] - 1) * 100 if meas[ph] > 0 else float("nan")
        rows.append(row)
    return rows


def summarize(rows: list[dict], grid: Grid) -> dict:
    def stats_of(key):
        errs = [abs(r[key]) for r in rows if r[key] == r[key]]
        return (statistics.median(errs), max(errs)) if errs else (None, None)

    med, mx = stats_of("epoch_err_pct")
    per_phase = {ph: dict(zip(("median_abs_err_pct", "max_abs_err_pct"), stats_of(f"{ph}_err_pct")))
                 for ph in PHASES}
    worst = max(rows, key=lambda r: abs(r["epoch_err_pct"])) if rows else None
    return {"configs": len(rows), "median_abs_err_pct": med, "max_abs_err_pct": mx,
            "per_phase": per_phase, "target_met": med is not None and med <= 5 and mx <= 15,
            "worst": worst, "grid": {k: v for k, v in grid.__dict__.items()}}


def run_grid(grid: Grid, work: Path, runner=None, log=print) -> list[dict]:
    rows = []
    for i, (ranks, link) in enumerate(grid.cells()):
        log(f"[{i + 1}/{len(grid.cells())}] {ranks} ranks, link {link or 'loopback'}: "
            f"{len(grid.points())} configurations")
        cell = run_cell(grid, ranks, link, work, runner)
        for r in cell:
            log(f"    {r['model']:4s} {r['schedule']:7s} bits {r['bits']:>8s}: measured "
                f"{r['epoch_meas_ms']:9.1f} ms, predicted {r['epoch_pred_ms']:9.1f} ms "
                f"({r['epoch_err_pct']:+.1f} %)")
        rows.extend(cell)
    return rows


def scatter(path: Path, rows: list[dict]) -> Path:
    """Predicted vs measured epoch time, log-log, with y = x and a +-15 % band."""
    from adaqp.experiments.plotting import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    marks = {"vanilla": "o", "overlap": "s", "quant": "^", "adaqp": "D"}
    links = sorted({r["link"] for r in rows})
    colours = dict(zip(links, ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")))
    for r in rows:
        ax.scatter(r["epoch_meas_ms"], r["epoch_pred_ms"], marker=marks.get(r["schedule"], "x"),
                   color=colours.get(r["link"], "k"), s=22, alpha=0.8, zorder=3)
    lo = min(min(r["epoch_meas_ms"], r["epoch_pred_ms"]) for r in rows) * 0.8
    hi = max(max(r["epoch_meas_ms"], r["epoch_pred_ms"]) for r in rows) * 1.25
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8, label="y = x", zorder=2)
    ax.fill_between([lo, hi], [lo * 0.85, hi * 0.85], [lo * 1.15, hi * 1.15], color="0.88", label="±15 %", zorder=1)
    for s, m in marks.items():
        ax.scatter([], [], marker=m, color="0.3", label=s)
    for link, c in colours.items():
        ax.scatter([], [], marker="o", color=c, label=link)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    for axis in (ax.xaxis, ax.yaxis):  # plain numbers, major ticks only (minor labels collide)
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("measured epoch time (ms)")
    ax.set_ylabel("predicted epoch time (ms)")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"{len(rows)} configurations, predicted (simulator) vs measured", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def quick(grid: Grid) -> Grid:
    """About a dozen configurations in a few minutes."""
    links = grid.links if len(grid.links) < 2 else (grid.links[0], grid.links[-1])
    return replace(grid, ranks=(2, 4), links=links, bits=("2", "adaptive"), models=grid.models[:1],
                   schedules=("vanilla", "adaqp"), epochs=min(grid.epochs, 8))


def check_links(grid: Grid) -> None:
    """Refuse before any run when a shaped link is asked for and cannot be emulated here."""
    if any(link is not None for link in grid.links):
        from adaqp.runtime.emulate import check_available

        check_available()
