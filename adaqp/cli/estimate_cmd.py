"""``adaqp estimate DATASET --parts N --cluster SPEC``: the analytic epoch-time estimate."""

from __future__ import annotations

from adaqp.cli.common import add_dataset, add_out, add_partition_args, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser(
        "estimate", help="closed-form epoch time of a plan on a cluster (no simulation)",
        description="Partition the graph, build the halo plan and estimate one training epoch on "
                    "the cluster from a hardware profile: per-exchange times and bottlenecks, "
                    "compute phases, what overlap hides. summary.json key: epoch_time_s.")
    add_dataset(p)
    add_partition_args(p, parts_required=False)
    p.add_argument("--cluster", default="local-cpu",
                   help="bundled cluster name or a ClusterSpec YAML (default: local-cpu); resized to --parts")
    p.add_argument("--profile", default=None, help="hardware profile name or file (default: the cluster's)")
    p.add_argument("--schedule", default="adaqp", help="vanilla | quant | overlap | adaqp (default: adaqp)")
    p.add_argument("--bits", default="8", help="uniform bit-width or a BitPlan file (default: 8)")
    p.add_argument("--model", choices=("gcn", "sage"), default="gcn")
    p.add_argument("--layers", type=positive_int, default=3)
    p.add_argument("--hidden", type=positive_int, default=256)
    p.add_argument("--no-layer-norm", dest="layer_norm", action="store_false")
    p.add_argument("--dropout", type=float, default=0.5)
    add_out(p)
    p.set_defaults(run=run)


def load_bits(text: str, pair_rows, layers: int):
    """A uniform width, or a BitPlan file validated against the plan."""
    from adaqp.plans import BitPlan
    from adaqp.wire import check_bits

    if text.isdigit():
        return check_bits(int(text))
    return BitPlan.load(text).validate(pair_rows, layers)


def run(args) -> int:
    from adaqp.cli.common import prepare_out
    from adaqp.cli.report import format_table, stage, write_csv, write_summary
    from adaqp.costmodel.analytic import ModelShape, estimate
    from adaqp.costmodel.bundled import load_cluster
    from adaqp.costmodel.profile import load_profile
    from adaqp.costmodel.workload import PlanStats
    from adaqp.data.spec import load_dataset
    from adaqp.halo import build_halo_plan
    from adaqp.partition import partition_graph

    out = prepare_out(args.out)
    cluster = load_cluster(args.cluster)
    parts = args.parts or cluster.num_ranks
    cluster = cluster.with_ranks(parts)
    profile = load_profile(args.profile or cluster.profile)
    with stage(f"loading {args.dataset}"):
        graph = load_dataset(args.dataset)
    with stage(f"partitioning into {parts} parts ({args.method}) and building the halo plan"):
        plan = build_halo_plan(graph, partition_graph(graph, parts, args.method, args.seed, args.balance))
    stats = PlanStats.from_halo_plan(plan)
    shape = ModelShape(args.model, (graph.num_features,) + (args.hidden,) * (args.layers - 1) + (graph.num_classes,),
                       args.layer_norm, args.dropout > 0)
    bits = load_bits(args.bits, stats.pair_rows, args.layers)
    e = estimate(stats, shape, args.schedule, cluster, profile, bits)
    rows = [{"layer": a, "direction": b, "ms": c * 1e3, "bottleneck": d} for a, b, c, d in e.exchanges]
    print(f"{graph.name} on {cluster.name} ({cluster.num_ranks} ranks, profile {profile.name}, "
          f"{profile.kind}), {args.model} {args.layers}x{args.hidden}, schedule {args.schedule}, bits {args.bits}\n")
    print(format_table(rows))
    print("\ncompute phases, slowest rank (ms): " + ", ".join(f"{k} {v * 1e3:.2f}" for k, v in e.phases_s.items()))
    print(f"epoch {e.epoch_time_s * 1e3:.2f} ms = compute {e.compute_time_s * 1e3:.2f} + exposed communication "
          f"{e.exposed_comm_s * 1e3:.2f} (all-reduce {e.allreduce_s * 1e3:.2f}); communication alone "
          f"{e.comm_time_s * 1e3:.2f} ms")
    if out is not None:
        write_csv(out / "exchanges.csv", rows)
        write_summary(out, {"dataset": graph.name, "cluster": cluster.name, "profile": profile.name,
                            "parts": parts, "schedule": args.schedule, "bits": args.bits, **e.summary()})
        print(f"wrote {out}/: exchanges.csv, summary.json")
    return 0
