"""``adaqp partition DATASET --parts N``: partition a graph and describe its halo."""

from __future__ import annotations

from pathlib import Path

from adaqp.cli.common import add_dataset, add_out, add_partition_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "partition", help="partition a graph and describe the halo exchange it implies",
        description="Partition a graph (METIS by default), build the halo plan and print a "
                    "per-part table: inner, central and marginal nodes, halo rows in and out. "
                    "With --out, writes the partition (reusable with --load), parts.csv, "
                    "pair_rows.csv, halo.png and summary.json.")
    add_dataset(p)
    add_partition_args(p)
    p.add_argument("--load", metavar="DIR", type=Path, default=None,
                   help="reuse the partition saved in DIR instead of computing one "
                        "(refused if it was made for another graph)")
    p.add_argument("--save-halo", action="store_true",
                   help="with --out, also save the halo plan (halo_plan.npz + .json)")
    add_out(p)
    p.set_defaults(run=run)


def part_rows(stats) -> list[dict]:
    """One row per part of the table the command prints (and writes as parts.csv)."""
    return [{
        "part": p, "inner": int(stats.inner[p]), "central": int(stats.central[p]),
        "marginal": int(stats.marginal[p]), "halo_in": int(stats.halo_in[p]),
        "halo_out": int(stats.halo_out[p]), "local_edges": int(stats.local_edges[p]),
        "cut_edges_in": int(stats.cut_edges[p]),
    } for p in range(len(stats.inner))]


def summarize(graph, partition, stats) -> dict:
    return {
        "dataset": graph.name, "nodes": graph.num_nodes, "edges": graph.num_edges,
        "parts": partition.num_parts, "method": partition.method,
        "edge_cut": int(stats.edge_cut), "edge_cut_frac": stats.edge_cut / max(graph.num_edges, 1),
        "replication_factor": float(stats.replication_factor),
        "halo_rows": int(stats.halo_in.sum()),
        "max_inner_over_mean": float(stats.inner.max() / stats.inner.mean()),
    }


def run(args) -> int:
    from adaqp.cli.common import prepare_out
    from adaqp.cli.report import format_table, stage
    from adaqp.data.spec import load_dataset
    from adaqp.errors import require
    from adaqp.halo import build_halo_plan
    from adaqp.partition import load_partition, partition_graph, partition_stats

    out = prepare_out(args.out)
    with stage(f"loading {args.dataset}"):
        graph = load_dataset(args.dataset)
    if args.load is not None:
        with stage(f"loading partition from {args.load}"):
            partition = load_partition(args.load, graph)
        require(partition.num_parts == args.parts,
                f"partition in {args.load} has {partition.num_parts} parts, --parts asks for {args.parts}")
    else:
        with stage(f"partitioning into {args.parts} parts ({args.method})"):
            partition = partition_graph(graph, args.parts, method=args.method, seed=args.seed,
                                        balance=args.balance)
    with stage("computing halo statistics and plan"):
        stats = partition_stats(graph, partition)
        halo = build_halo_plan(graph, partition)
    rows = part_rows(stats)
    summary = summarize(graph, partition, stats)
    print(format_table(rows))
    print(f"\nedge cut {summary['edge_cut']:,} of {graph.num_edges:,} directed edges "
          f"({100 * summary['edge_cut_frac']:.1f} %), replication factor "
          f"{summary['replication_factor']:.3f}, imbalance (max/mean inner) {summary['max_inner_over_mean']:.3f}")
    if out is not None:
        _write_outputs(out, graph, partition, stats, halo, rows, summary, args.save_halo)
    return 0


def _write_outputs(out, graph, partition, stats, halo, rows, summary, save_halo: bool) -> None:
    from adaqp.cli.plots import halo_heatmap
    from adaqp.cli.report import write_csv, write_summary
    from adaqp.partition import save_partition

    save_partition(partition, out, stats=stats)
    write_csv(out / "parts.csv", rows)
    pr = stats.pair_rows
    write_csv(out / "pair_rows.csv", [{"sender": s, **{f"to_{r}": int(pr[s, r]) for r in range(len(pr))}}
                                      for s in range(len(pr))])
    halo_heatmap(out / "halo.png", pr, f"{graph.name}: halo rows per pair ({partition.method}, "
                                       f"{partition.num_parts} parts)")
    if save_halo:
        halo.save(out)
    write_summary(out, summary)
    print(f"wrote {out}/: partition.npz, partition.json, parts.csv, pair_rows.csv, halo.png, "
          f"{'halo_plan.npz, ' if save_halo else ''}summary.json")
