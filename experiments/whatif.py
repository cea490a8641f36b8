"""What-if capacity planning: sweep a cluster over device count, network bandwidth, GPUDirect RDMA
and schedule, and predict the epoch time of each point with the simulator — no cluster needed.

The pieces are plain functions returning rows (dicts), so a notebook can call them as the CLI
(``adaqp whatif``) does::

    wl = like_workload("ogbn-products")            # or built_workload(load_dataset("cora"))
    grid = Grid(devices=[8, 16, 32], bandwidths=parse_bandwidths("25gbit,100gbit"),
                gdr=[True, False], schedules=["vanilla", "adaqp"], bits=2)
    rows = sweep(wl, model_shape(wl, "gcn", 3, 256), load_cluster("h100-8x-nvlink-ib200"), profile, grid)
    best, reason = cheapest(rows, target_s=0.5)

Modelling choices (each also stated in the CLI's summary.json under ``assumptions``):

- **Layout.** ``devices`` GPUs fill nodes of ``per_node`` devices (default: the base cluster's
  ``devices_per_node``): up to ``per_node`` devices sit on one node, where the network is not
  used at all; beyond that, ``devices / per_node`` nodes. One rank per device. A base whose ranks
  share one device (``h200-shared-*``, ``local-cpu``) is resized with ``ClusterSpec.with_ranks``
  instead (more ranks on the device; rows then count ranks as ``devices`` and give
  ``physical_devices`` apart). The base's intra-node link, latency, oversubscription and
  profile are kept; only the per-node NIC bandwidth and GPUDirect RDMA change.
- **Bits.** Quantized schedules (``quant``, ``adaqp``) send every message at one fixed width
  (``bits``, default 2); ``vanilla`` and ``overlap`` send fp32. A solved per-row BitPlan would
  do at least as well at equal variance budget: fixed widths bound what adaptive assignment buys.
- **Graphs known by their counts** (``like_workload``): ``synthetic_stats`` with balanced parts,
  cut edges spread evenly over ordered pairs and an **assumed** edge-cut fraction (default 0.3 of
  the directed edges cross parts, capped at a random partition's ``1 - 1/P``), the same at every
  part count — METIS cuts fewer edges at 2 parts and more at 256, so read small and large device
  counts as optimistic and pessimistic respectively. Pass ``edge_cut`` to change it.
- **Memory** (``memory_bytes``, :func:`adaqp.costmodel.memory.peak_memory_bytes`, the model
  ``estimate``, ``simulate`` and ``validate`` use; terms in docs/memory.md): the live bytes of the
  busiest rank — data, plan, operators, exchange buffers at the point's bit-width, parameters
  with Adam state, activations — times the ranks per device, against 90 % of the device memory
  the profile states. A point that does not fit is reported but never chosen as the cheapest.

Nothing outside ``experiments`` and the CLI imports this module.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace


from adaqp.cluster import ClusterSpec, Network, parse_bandwidth_Bps, parse_latency_s
from adaqp.costmodel.memory import peak_memory_bytes as memory_bytes  # one model for every command
from adaqp.costmodel.program import ModelShape
from adaqp.costmodel.workload import PlanStats
from adaqp.errors import require
from adaqp.experiments.public_graphs import LIKE, LikeGraph
from adaqp.experiments.whatif_plots import heatmap_plot, lines_plot

__all__ = [
    "DEFAULT_EDGE_CUT",
    "LIKE",
    "MEMORY_HEADROOM",
    "QUANTIZED",
    "Grid",
    "LikeGraph",
    "Workload",
    "auto_merge_rel",
    "built_workload",
    "cheapest",
    "device_memory_bytes",
    "heatmap_plot",
    "layout",
    "like_workload",
    "lines_plot",
    "memory_bytes",
    "model_shape",
    "parse_bandwidths",
    "parse_bits",
    "parse_devices",
    "parse_gdr",
    "parse_schedules",
    "parse_target",
    "sweep",
    "with_network",
]

DEFAULT_EDGE_CUT = 0.3
MEMORY_HEADROOM = 0.9  # usable fraction of device memory (CUDA context, allocator slack)
QUANTIZED = ("quant", "adaqp")


@dataclass
class Workload:
    """A graph to sweep: its sizes and, per part count, the plan statistics the simulator needs."""

    name: str
    num_nodes: int
    num_edges: int
    features: int
    classes: int
    kind: str  # "built" (partitioned for real) | "like" (statistics alone)
    stats_fn: Callable[[int], PlanStats]
    assumptions: list[str] = field(default_factory=list)
    _cache: dict = field(default_factory=dict, repr=False)

    def stats(self, parts: int) -> PlanStats:
        require(parts <= self.num_nodes, f"{self.name}: cannot split {self.num_nodes:,} nodes into {parts} parts")
        if parts not in self._cache:
            self._cache[parts] = self.stats_fn(parts)
        return self._cache[parts]


def like_workload(name: str, edge_cut: float = DEFAULT_EDGE_CUT) -> Workload:
    """A public graph known by its counts; plan statistics from ``synthetic_stats``."""
    from adaqp.simulator.synthetic import synthetic_stats

    key = {k.lower(): k for k in LIKE}.get(str(name).lower())
    require(key is not None, f"unknown --like graph {name!r}; known: {', '.join(LIKE)}")
    require(0.0 <= edge_cut <= 1.0, f"--edge-cut must be in [0, 1], got {edge_cut}")
    g = LIKE[key]

    def stats(parts: int) -> PlanStats:
        return synthetic_stats(g.nodes, g.edges, parts, min(edge_cut, 1.0 - 1.0 / parts))

    return Workload(g.name, g.nodes, g.edges, g.features, g.classes, "like", stats, [
        f"graph known by its public counts only ({g.source})",
        (f"ASSUMED edge cut: {edge_cut:g} of the directed edges cross parts at every part count "
         "(capped at a random partition's 1 - 1/P); not measured on this graph"),
        ("balanced parts; cut edges spread evenly over ordered part pairs; halo rows and marginal "
         "nodes by a distinct-source estimate (simulator/synthetic.py)"),
    ])


def built_workload(graph, method: str = "metis", seed: int = 0, balance: str = "nodes") -> Workload:
    """A graph built at its real size and partitioned for real at every part count."""
    from adaqp.halo import build_halo_plan
    from adaqp.partition import partition_graph

    def stats(parts: int) -> PlanStats:
        return PlanStats.from_halo_plan(build_halo_plan(graph, partition_graph(graph, parts, method, seed, balance)))

    return Workload(graph.name, graph.num_nodes, graph.num_edges, graph.num_features, graph.num_classes,
                    "built", stats, [f"graph built and partitioned for real ({method}, balance {balance}, seed {seed})"])


def model_shape(wl: Workload, model: str = "gcn", layers: int = 3, hidden: int = 256,
                heads: int | None = None) -> ModelShape:
    """The reference configuration's model on this graph: LayerNorm and dropout on (GAT:
    ``heads`` heads of ``hidden`` per hidden layer, default 8, and one output head)."""
    from adaqp.runtime.model import ModelConfig

    require(layers >= 1 and hidden >= 1, "--layers and --hidden must be >= 1")
    return ModelShape.of(ModelConfig(model, layers, hidden, heads=heads), wl.features, wl.classes)


# ---- parsing the grid ------------------------------------------------------------------------
def _items(text: str, flag: str) -> list[str]:
    items = [t.strip() for t in str(text).split(",")]
    require(all(items), f"{flag}: empty item in {text!r} (comma-separated list expected)")
    return items


def parse_devices(text: str) -> list[int]:
    out = []
    for t in _items(text, "--devices"):
        require(t.isdigit() and int(t) >= 1, f"--devices: {t!r} is not a positive integer")
        out.append(int(t))
    return sorted(set(out))


def parse_bandwidths(text: str) -> list[tuple[str, float]]:
    """``"25gbit,100gbit"`` -> [(label, bytes/s)], sorted by bandwidth, duplicates dropped."""
    seen: dict[float, str] = {}
    for t in _items(text, "--bandwidth"):
        seen.setdefault(parse_bandwidth_Bps(t, "--bandwidth"), t)
    return [(label, bw) for bw, label in sorted(seen.items())]


def parse_gdr(text: str | None, base: ClusterSpec) -> list[bool]:
    """``on`` | ``off`` | ``both``; None: both where the transport allows GPUDirect RDMA (NCCL), else off."""
    nccl = base.transport == "nccl"
    if text is None:
        return [False, True] if nccl else [False]
    t = str(text).strip().lower()
    require(t in ("on", "off", "both"), f"--gdr must be on, off or both, got {text!r}")
    require(t == "off" or nccl, f"--gdr {t}: GPUDirect RDMA needs transport nccl, but cluster {base.name!r} "
                                f"uses {base.transport}")
    return {"on": [True], "off": [False], "both": [False, True]}[t]


def parse_schedules(text: str) -> list[str]:
    """Schedule names; ``vanilla`` is always included (first), as the baseline of the speedups."""
    from adaqp.schedule import Schedule

    names = [Schedule.parse(t).name for t in _items(text, "--schedules")]
    return ["vanilla"] + [n for i, n in enumerate(names) if n != "vanilla" and n not in names[:i]]


def parse_bits(text: str) -> int:
    from adaqp import wire

    t = str(text).strip()
    require(t.isdigit(), f"--bits: whatif sends every quantized message at one fixed width "
                         f"({', '.join(map(str, wire.ALL_BITS))}), got {text!r}")
    return wire.check_bits(int(t))


def parse_target(text: str | None) -> float | None:
    if text is None:
        return None
    s = parse_latency_s(text, "--target-epoch-time")
    require(s > 0, f"--target-epoch-time must be positive, got {text!r}")
    return s


@dataclass(frozen=True)
class Grid:
    devices: list[int]
    bandwidths: list[tuple[str, float]]  # (label, bytes/s)
    gdr: list[bool]
    schedules: list[str]
    bits: int = 2

    @property
    def points(self) -> int:
        return len(self.devices) * len(self.bandwidths) * len(self.gdr) * len(self.schedules)

    def to_dict(self) -> dict:
        return {"devices": self.devices, "bandwidths": [b for b, _ in self.bandwidths],
                "gdr": ["on" if g else "off" for g in self.gdr], "schedules": self.schedules, "bits": self.bits}


# ---- clusters ----------------------------------------------------------------------------------
def layout(base: ClusterSpec, devices: int, per_node: int | None = None) -> ClusterSpec:
    """``base`` resized to ``devices`` devices filling nodes of ``per_node`` (see module doc)."""
    if base.ranks_per_device > 1 or (base.nodes == 1 and base.devices_per_node == 1):
        require(per_node is None, f"--per-node: cluster {base.name!r} runs its ranks on one shared device; "
                                  "it is resized by ranks per device")
        return base.with_ranks(devices)
    k = per_node or base.devices_per_node
    require(k >= 1, f"--per-node must be >= 1, got {k}")
    if devices <= k:
        return replace(base, nodes=1, devices_per_node=devices)
    require(devices % k == 0, f"--devices: {devices} devices do not fill nodes of {k} devices; use multiples "
                              f"of {k} above {k}, or set --per-node")
    return replace(base, nodes=devices // k, devices_per_node=k)


def with_network(cluster: ClusterSpec, bw_Bps: float, gdr: bool) -> ClusterSpec:
    """The same cluster with a per-node NIC of ``bw_Bps`` and GPUDirect RDMA on or off."""
    n = cluster.network
    net = Network(bw_Bps, None if n is None else n.latency_s, gdr, 1.0 if n is None else n.oversubscription)
    return replace(cluster, network=net)


# ---- memory ------------------------------------------------------------------------------------
def device_memory_bytes(profile) -> float | None:
    """Device memory the profile states (``meta.memory``, e.g. ``HBM3 80 GB``, ``16/32 GB``:
    the largest), in bytes; None when it says nothing (CPU profiles)."""
    text = str(profile.meta.get("memory") or "")
    m = re.search(r"((?:\d+(?:\.\d+)?/)*\d+(?:\.\d+)?)\s*(GB|GiB|TB)", text)
    if not m:
        return None
    scale = {"GB": 1e9, "GiB": 2.0**30, "TB": 1e12}[m.group(2)]
    return max(float(x) for x in m.group(1).split("/")) * scale


# ---- the sweep ---------------------------------------------------------------------------------
def auto_merge_rel(ranks: int) -> float:
    """Exact flow draining up to 16 ranks; above, flows within 1 % of done drain together.

    Real partitions give irregular traffic: every flow drains at its own time and each drain
    re-divides bandwidth, which at 64-128 ranks makes one exact epoch take seconds to a minute
    here; 1e-2 cuts that 5-10x for an error of at most 1 % of a flow's duration (on a 20,000-node
    SBM at 32-128 ranks: at most 0.5 % on the epoch; see ``simulate(merge_rel=...)``)."""
    return 0.0 if ranks <= 16 else 1e-2


def sweep(wl: Workload, shape: ModelShape, base: ClusterSpec, profile, grid: Grid, *,
          per_node: int | None = None, target_s: float | None = None, merge_rel: float | None = None,
          on_point: Callable[[int, int, dict], None] | None = None) -> list[dict]:
    """Simulate one epoch at every grid point; one row per (devices, bandwidth, gdr, schedule).

    Where all devices sit on one node the network carries nothing, so bandwidth and GDR do not
    change the epoch: it is simulated once and the row repeated (``network_used`` = False).
    ``merge_rel``: the simulator's flow-merging tolerance; None picks :func:`auto_merge_rel`."""
    from adaqp.costmodel.profile import check_fits
    from adaqp.simulator import simulate

    mem_cap = device_memory_bytes(profile)
    rows: list[dict] = []
    done = 0
    for d in grid.devices:
        shaped = layout(base, d, per_node)
        check_fits(profile, shaped)
        stats = wl.stats(shaped.num_ranks)
        nnz = float((stats.nnz_central + stats.nnz_marginal).sum())
        cut = float(stats.nnz_marginal_halo.sum()) / nnz if nnz else 0.0
        mem = float(memory_bytes(stats, shape).max()) * shaped.ranks_per_device
        fits = mem_cap is None or mem <= MEMORY_HEADROOM * mem_cap
        merge = auto_merge_rel(shaped.num_ranks) if merge_rel is None else merge_rel
        one_node: dict[str, object] = {}
        for label, bw in grid.bandwidths:
            for gdr in grid.gdr:
                cluster = with_network(shaped, bw, gdr)
                point = []
                for sched in grid.schedules:
                    bits = grid.bits if sched in QUANTIZED else 32
                    r = one_node.get(sched) if shaped.nodes == 1 else None
                    if r is None:
                        t0 = time.perf_counter()
                        r = simulate(stats, shape, sched, cluster, profile, bits, trace=False, merge_rel=merge)
                        r = (r, time.perf_counter() - t0)
                        if shaped.nodes == 1:
                            one_node[sched] = r
                    res, wall = r
                    row = {"devices": d, "nodes": shaped.nodes, "per_node": shaped.ranks_per_node,
                           "ranks": shaped.num_ranks, "physical_devices": shaped.num_devices,
                           "bandwidth": label, "bandwidth_Bps": bw, "gdr": "on" if gdr else "off",
                           "network_used": shaped.nodes > 1, "schedule": sched, "bits": bits,
                           "epoch_time_s": res.epoch_time_s, "speedup": float("nan"),
                           "comm_time_s": res.comm_time_s,
                           "comm_share": res.comm_time_s / res.epoch_time_s if res.epoch_time_s else 0.0,
                           "exposed_comm_s": res.exposed_comm_s,
                           "exposed_share": res.exposed_comm_s / res.epoch_time_s if res.epoch_time_s else 0.0,
                           "compute_time_s": res.compute_time_s, "edge_cut_frac": cut,
                           "mem_GB": mem / 1e9, "fits_memory": fits, "merge_rel": merge,
                           "meets_target": None if target_s is None else bool(fits and res.epoch_time_s <= target_s),
                           "sim_wall_s": wall}
                    point.append(row)
                    done += 1
                    if on_point is not None:
                        on_point(done, grid.points, row)
                van = next(r["epoch_time_s"] for r in point if r["schedule"] == "vanilla")
                for row in point:
                    row["speedup"] = van / row["epoch_time_s"] if row["epoch_time_s"] > 0 else float("nan")
                rows.extend(point)
    return rows


def _hardware_key(r: dict) -> tuple:
    """Cheapest first: fewest devices, then lowest bandwidth, then GDR off, then fastest."""
    return (r["devices"], r["bandwidth_Bps"], r["gdr"] == "on", r["epoch_time_s"])


def cheapest(rows: list[dict], target_s: float | None, schedule: str | None = None) -> tuple[dict | None, str]:
    """The cheapest row (fewest devices, then lowest bandwidth, then GDR off; among equal hardware
    the fastest schedule) whose epoch fits ``target_s`` and whose memory fits; else None and why."""
    pool = [r for r in rows if schedule is None or r["schedule"] == schedule]
    if target_s is None:
        return None, "no --target-epoch-time given"
    if not pool:
        return None, f"no rows for schedule {schedule}"
    ok = [r for r in pool if r["fits_memory"] and r["epoch_time_s"] <= target_s]
    if ok:
        best = min(ok, key=_hardware_key)
        return best, (f"fewest devices, then lowest bandwidth, then GDR off, meeting {target_s:g} s "
                      f"({len(ok)} of {len(pool)} points meet it)")
    fast = min(pool, key=lambda r: r["epoch_time_s"])
    net = f"{fast['bandwidth']}, GDR {fast['gdr']}" if fast["network_used"] else "one node"
    where = f"{fast['devices']} devices, {net}, {fast['schedule']}"
    if fast["epoch_time_s"] <= target_s:  # fast enough but too big for memory
        return None, (f"points meeting {target_s:g} s do not fit device memory (fastest: "
                      f"{fast['epoch_time_s']:.3g} s at {where}, ~{fast['mem_GB']:.0f} GB per device)")
    return None, f"no point in the grid meets {target_s:g} s; the fastest is {fast['epoch_time_s']:.3g} s ({where})"
