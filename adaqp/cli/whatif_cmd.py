"""``adaqp whatif [DATASET | --like NAME]``: capacity planning without the cluster — sweep devices,
network bandwidth, GPUDirect RDMA and schedule, and predict each epoch with the simulator."""

from __future__ import annotations

from adaqp.cli.common import DATASET_HELP, add_out, positive_int

DEFAULT_BASE = "h100-8x-nvlink-ib200"
DEFAULT_DEVICES_LIKE = "2,4,8,16,32,64,128,256"
DEFAULT_DEVICES_BUILT = "2,4,8,16,32,64"
DEFAULT_BANDWIDTH = "10gbit,25gbit,100gbit,400gbit"
DEFAULT_SCHEDULES = "vanilla,quant,overlap,adaqp"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "whatif", help="sweep devices x bandwidth x GDR x schedule: predicted epoch time, cheapest config",
        description="Capacity planning without the cluster. For a dataset built at its real size "
                    "(partitioned for real at every device count) or a public graph known by its "
                    "counts (--like), simulate one epoch at every point of a grid of device counts, "
                    "per-node network bandwidths, GPUDirect RDMA on/off and schedules, on a base "
                    "cluster resized to fill nodes. Prints the predicted epoch time, each schedule's "
                    "speedup over vanilla, the communication share and the cheapest configuration "
                    "(fewest devices, then lowest bandwidth) meeting --target-epoch-time. --out writes "
                    "whatif.csv, summary.json (best, best_by_schedule, the grid, every row and "
                    "extrapolated: op sizes outside the profile's measured range, also warned on stderr), "
                    "whatif_heatmap.png and whatif_lines.png.")
    p.add_argument("dataset", metavar="DATASET", nargs="?", default=None,
                   help=DATASET_HELP + " (or use --like)")
    p.add_argument("--like", metavar="NAME", default=None,
                   help="a public graph known by its counts, not built: reddit, yelp, ogbn-products, "
                        "amazonproducts, ogbn-papers100M (plan statistics assume --edge-cut)")
    p.add_argument("--edge-cut", type=float, default=None, metavar="F",
                   help="with --like: ASSUMED fraction of directed edges crossing parts (default 0.3, "
                        "capped at 1 - 1/P)")
    p.add_argument("--base", default=DEFAULT_BASE,
                   help=f"bundled cluster name or ClusterSpec YAML to resize (default: {DEFAULT_BASE})")
    p.add_argument("--profile", default=None, help="hardware profile name or file (default: the cluster's)")
    p.add_argument("--devices", default=None,
                   help=f"device counts (default: {DEFAULT_DEVICES_LIKE} with --like; {DEFAULT_DEVICES_BUILT} "
                        "for a built DATASET, whose real partitions give irregular traffic that takes the "
                        "simulator longer)")
    p.add_argument("--per-node", type=positive_int, default=None,
                   help="devices per node; devices fill nodes (default: the base cluster's devices per node)")
    p.add_argument("--bandwidth", default=DEFAULT_BANDWIDTH,
                   help=f"network bandwidth per node (default: {DEFAULT_BANDWIDTH})")
    p.add_argument("--gdr", default=None, help="GPUDirect RDMA: on | off | both (default: both on NCCL clusters, "
                                               "else off)")
    p.add_argument("--schedules", default=DEFAULT_SCHEDULES,
                   help=f"schedules; vanilla is always added as the baseline (default: {DEFAULT_SCHEDULES})")
    p.add_argument("--bits", default="2",
                   help="one fixed bit-width for every quantized message (1, 2, 4, 8, 16; default 2)")
    p.add_argument("--model", choices=("gcn", "sage", "gat"), default="gcn")
    p.add_argument("--heads", type=positive_int, default=None, help="gat: heads per hidden layer (default: 8)")
    p.add_argument("--layers", type=positive_int, default=3)
    p.add_argument("--hidden", type=positive_int, default=256)
    p.add_argument("--target-epoch-time", default=None, metavar="T",
                   help="e.g. 0.5s or 200ms: report the cheapest configuration meeting it")
    p.add_argument("--merge-rel", type=float, default=None, metavar="F",
                   help="simulator flow-merging tolerance (default: 0 up to 16 ranks, 0.01 above: flows "
                        "within 1 %% of done drain together)")
    p.add_argument("--method", choices=("metis", "random", "contiguous"), default="metis",
                   help="partitioner for a built DATASET (default: metis)")
    p.add_argument("--balance", choices=("nodes", "edges"), default="nodes")
    p.add_argument("--seed", type=int, default=0, help="partitioner seed (default: 0)")
    add_out(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from adaqp.cli.common import prepare_out
    from adaqp.cli.report import format_table, stage, write_csv, write_summary
    from adaqp.costmodel.bundled import load_cluster
    from adaqp.costmodel.coverage import watch
    from adaqp.costmodel.profile import check_fits, load_profile
    from adaqp.errors import require
    from adaqp.experiments import whatif as wi

    require((args.dataset is None) != (args.like is None), "give a DATASET or --like NAME (one of them)")
    require(args.edge_cut is None or args.like is not None, "--edge-cut is for --like graphs only "
                                                            "(a built DATASET is partitioned for real)")
    base = load_cluster(args.base)
    profile = load_profile(args.profile or base.profile)
    check_fits(profile, base)
    require(args.merge_rel is None or 0.0 <= args.merge_rel < 1.0, f"--merge-rel must be in [0, 1), got {args.merge_rel}")
    devices = args.devices or (DEFAULT_DEVICES_LIKE if args.like is not None else DEFAULT_DEVICES_BUILT)
    grid = wi.Grid(wi.parse_devices(devices), wi.parse_bandwidths(args.bandwidth),
                   wi.parse_gdr(args.gdr, base), wi.parse_schedules(args.schedules), wi.parse_bits(args.bits))
    target = wi.parse_target(args.target_epoch_time)
    for d in grid.devices:  # refuse a bad layout before any work
        wi.layout(base, d, args.per_node)
    if args.like is not None:
        wl = wi.like_workload(args.like, wi.DEFAULT_EDGE_CUT if args.edge_cut is None else args.edge_cut)
    out = prepare_out(args.out)
    if args.like is None:
        from adaqp.data.spec import load_dataset

        with stage(f"loading {args.dataset}"):
            wl = wi.built_workload(load_dataset(args.dataset), args.method, args.seed, args.balance)
    shape = wi.model_shape(wl, args.model, args.layers, args.hidden, args.heads)
    with watch(profile) as extrapolated:
        rows = _sweep(wl, shape, base, profile, grid, args.per_node, target, args.merge_rel, wi)
    best, reason = wi.cheapest(rows, target)
    by_sched = {s: wi.cheapest(rows, target, s) for s in grid.schedules}

    title = (f"{wl.name} ({wl.num_nodes:,} nodes, {wl.num_edges:,} edges{', by counts' if wl.kind == 'like' else ''}), "
             f"{args.model} {args.layers}x{args.hidden}, base {base.name} ({profile.name}, {profile.kind}), "
             f"quantized at {grid.bits} bits")
    print(title + "\n")
    for a in wl.assumptions:
        print(f"  · {a}")
    print()
    print(format_table(*_table(rows, grid)))
    print()
    print(_best_line("cheapest meeting the target", best, reason, rows))
    if target is not None:
        for s, (b, why) in by_sched.items():
            print(_best_line(f"  {s} alone", b, why, rows))
    if out is not None:
        cols = ["devices", "nodes", "per_node", "ranks", "physical_devices", "bandwidth", "bandwidth_Bps", "gdr", "network_used",
                "schedule", "bits", "epoch_time_s", "speedup", "comm_time_s", "comm_share", "exposed_comm_s",
                "exposed_share", "compute_time_s", "edge_cut_frac", "mem_GB", "fits_memory", "meets_target",
                "merge_rel"]
        write_csv(out / "whatif.csv", rows, cols)
        heat_sched = next((s for s in ("adaqp", "quant", "overlap") if s in grid.schedules), "vanilla")
        wi.heatmap_plot(out / "whatif_heatmap.png", rows, heat_sched, _short(wl, args), target,
                        by_sched[heat_sched][0])
        base_gdr = base.network is not None and base.network.gdr
        line_gdr = "on" if (grid.gdr[0] if len(grid.gdr) == 1 else base_gdr) else "off"
        wi.lines_plot(out / "whatif_lines.png", rows, _short(wl, args), line_gdr, target)
        write_summary(out, {
            "dataset": wl.name, "source": wl.kind, "nodes": wl.num_nodes, "edges": wl.num_edges,
            "features": wl.features, "classes": wl.classes, "assumptions": wl.assumptions,
            "base": base.name, "profile": profile.name, "profile_kind": profile.kind,
            "model": args.model, "layers": args.layers, "hidden": args.hidden, "per_node": args.per_node,
            "target_epoch_time_s": target, "grid": grid.to_dict(),
            "best": _clean(best), "best_reason": reason,
            "best_by_schedule": {s: _clean(b) for s, (b, _) in by_sched.items()},
            "rows": [_clean(r) for r in rows], "extrapolated": extrapolated})
        print(f"\nwrote {out}/: whatif.csv, summary.json, whatif_heatmap.png, whatif_lines.png")
    return 0


def _sweep(wl, shape, base, profile, grid, per_node, target, merge_rel, wi):
    """The sweep with a progress bar on stderr (a terminal only) and a line before and after."""
    import sys
    import time

    from tqdm import tqdm

    print(f"· simulating {grid.points} points ({len(grid.devices)} device counts x {len(grid.bandwidths)} "
          f"bandwidths x {len(grid.gdr)} GDR x {len(grid.schedules)} schedules) ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    bar = tqdm(total=grid.points, unit="pt", file=sys.stderr, dynamic_ncols=True, leave=False, disable=None)

    def tick(done, total, row):
        bar.set_description(f"{row['devices']} devices, {row['bandwidth']}", refresh=False)
        bar.update(1)

    try:
        rows = wi.sweep(wl, shape, base, profile, grid, per_node=per_node, target_s=target,
                        merge_rel=merge_rel, on_point=tick)
    finally:
        bar.close()
    print(f"· simulated {grid.points} points in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return rows


def _short(wl, args) -> str:
    return f"{wl.name}{' (by counts)' if wl.kind == 'like' else ''}, {args.model} {args.layers}x{args.hidden}"


def _table(rows, grid):
    """One line per hardware point (one per device count where a single node leaves the network
    unused): epoch ms per schedule, speedups over vanilla, communication share, memory."""
    scheds = grid.schedules
    lines, seen = [], set()
    by_point: dict[tuple, dict] = {}
    for r in rows:
        by_point.setdefault((r["devices"], r["bandwidth_Bps"], r["gdr"]), {})[r["schedule"]] = r
    for (d, bw, g), rs in by_point.items():
        r0 = rs["vanilla"]
        key = (d,) if not r0["network_used"] else (d, bw, g)
        if key in seen:
            continue
        seen.add(key)
        line = {"devices": d, "nodes": r0["nodes"],
                "network": r0["bandwidth"] if r0["network_used"] else "(1 node)",
                "gdr": g if r0["network_used"] else "-"}
        for s in scheds:
            line[f"{s} ms"] = rs[s]["epoch_time_s"] * 1e3
        for s in scheds[1:]:
            line[f"{s} x"] = rs[s]["speedup"]
        for s in (scheds[0], scheds[-1]) if len(scheds) > 1 else scheds:
            line[f"comm % {s}"] = rs[s]["comm_share"] * 100
        line["mem GB"] = r0["mem_GB"]
        if r0["meets_target"] is not None:
            ok = [s for s in scheds if rs[s]["meets_target"]]
            line["meets target"] = ",".join(ok) if ok else ("-" if r0["fits_memory"] else "OOM")
        elif not r0["fits_memory"]:
            line["mem GB"] = f"{r0['mem_GB']:.1f} OOM"
        lines.append(line)
    return lines, list(lines[0].keys()) if lines else None


def _best_line(label, best, reason, rows) -> str:
    if best is None:
        return f"{label}: none — {reason}"
    van = next(r for r in rows if (r["devices"], r["bandwidth_Bps"], r["gdr"], r["schedule"]) ==
               (best["devices"], best["bandwidth_Bps"], best["gdr"], "vanilla"))
    net = (f"{best['bandwidth']} per node, GDR {best['gdr']}" if best["network_used"]
           else "one node (network unused)")
    bits = "" if best["bits"] == 32 else f" {best['bits']} bits"
    return (f"{label}: {best['devices']} devices ({best['nodes']} x {best['per_node']}), {net}, "
            f"{best['schedule']}{bits}: "
            f"{best['epoch_time_s'] * 1e3:.1f} ms (vanilla {van['epoch_time_s'] * 1e3:.1f} ms, "
            f"x{best['speedup']:.2f}), communication {best['comm_share'] * 100:.0f} % of the epoch")


def _clean(row):
    """JSON-safe copy of a row (NaN -> None)."""
    import math

    if row is None:
        return None
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
