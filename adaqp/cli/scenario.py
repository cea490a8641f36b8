"""What estimate, simulate and plan share: a graph, its partition and halo plan, a cluster and a
profile, a model shape and bits — one set of arguments, loaded one way."""

from __future__ import annotations

from dataclasses import dataclass

from adaqp.cli.common import add_dataset, add_partition_args, positive_int


def add_scenario_args(p, bits_default: str | None = "8") -> None:
    add_dataset(p)
    add_partition_args(p, parts_required=False)
    p.add_argument("--cluster", default="local-cpu",
                   help="bundled cluster name or a ClusterSpec YAML (default: local-cpu); resized to --parts")
    p.add_argument("--profile", default=None, help="hardware profile name or file (default: the cluster's)")
    p.add_argument("--schedule", default="adaqp", help="vanilla | quant | overlap | adaqp | pipegcn | pipegcn-q "
                        "(default: adaqp; docs/schedules.md)")
    if bits_default is not None:
        p.add_argument("--bits", default=bits_default,
                       help=f"uniform bit-width (1, 2, 4, 8, 16, 32) or a BitPlan file (default: {bits_default})")
    p.add_argument("--model", choices=("gcn", "sage", "gat"), default="gcn")
    p.add_argument("--heads", type=positive_int, default=None, help="gat: heads per hidden layer (default: 8)")
    p.add_argument("--out-heads", type=positive_int, default=None, help="gat: heads of the last layer (default: 1)")
    p.add_argument("--layers", type=positive_int, default=3)
    p.add_argument("--hidden", type=positive_int, default=256)
    p.add_argument("--no-layer-norm", dest="layer_norm", action="store_false")
    p.add_argument("--dropout", type=float, default=0.5)


@dataclass(frozen=True)
class Scenario:
    graph: object
    plan: object  # HaloPlan
    stats: object  # PlanStats
    shape: object  # ModelShape
    cluster: object  # ClusterSpec, resized to the parts
    profile: object  # HardwareProfile

    @property
    def parts(self) -> int:
        return self.cluster.num_ranks

    def headline(self, args) -> str:
        c, p = self.cluster, self.profile
        return (f"{self.graph.name} on {c.name} ({c.num_ranks} ranks, profile {p.name}, {p.kind}), "
                f"{args.model} {args.layers}x{args.hidden}, schedule {args.schedule}")


def load_scenario(args) -> Scenario:
    from adaqp.cli.report import stage
    from adaqp.costmodel.bundled import load_cluster
    from adaqp.costmodel.profile import check_fits, load_profile
    from adaqp.costmodel.program import ModelShape
    from adaqp.costmodel.workload import PlanStats
    from adaqp.data.spec import load_dataset
    from adaqp.halo import build_halo_plan
    from adaqp.partition import partition_graph

    cluster = load_cluster(args.cluster)
    cluster = cluster.with_ranks(args.parts or cluster.num_ranks)
    profile = load_profile(args.profile or cluster.profile)
    check_fits(profile, cluster)
    with stage(f"loading {args.dataset}"):
        graph = load_dataset(args.dataset)
    parts = cluster.num_ranks
    with stage(f"partitioning into {parts} parts ({args.method}) and building the halo plan"):
        plan = build_halo_plan(graph, partition_graph(graph, parts, args.method, args.seed, args.balance))
    from adaqp.runtime.model import ModelConfig

    model = ModelConfig(args.model, args.layers, args.hidden, args.dropout, args.layer_norm, args.heads, args.out_heads)
    shape = ModelShape.of(model, graph.num_features, graph.num_classes)
    return Scenario(graph, plan, PlanStats.from_halo_plan(plan), shape, cluster, profile)


def load_bits(text: str, pair_rows, layers: int):
    """A uniform width, or a BitPlan file validated against the plan."""
    from adaqp.plans import BitPlan
    from adaqp.wire import check_bits

    if text.isdigit():
        return check_bits(int(text))
    return BitPlan.load(text).validate(pair_rows, layers)
