"""``adaqp train DATASET --nprocs N``: distributed full-graph training that executes a plan."""

from __future__ import annotations

from pathlib import Path

from adaqp.cli.common import add_dataset, add_out, positive_int
from adaqp.cli.presets import add_config


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train a GCN/GraphSAGE on N ranks with a schedule and a bit plan",
        description="Spawns N local ranks (Gloo on CPU) that train one full-graph GNN together, "
                    "exchanging halo rows every layer as the schedule and bit plan say. For "
                    "multi-node jobs run it under torchrun with --launcher torchrun (see README).")
    add_dataset(p)
    p.add_argument("--nprocs", type=positive_int, default=2, help="ranks to spawn (default: 2)")
    p.add_argument("--schedule", default="vanilla", help="vanilla | quant | overlap | adaqp | pipegcn | pipegcn-q "
                        "(default: vanilla; docs/schedules.md)")
    p.add_argument("--bits", default="32",
                   help="message bit-width 1|2|4|8|16|32, 'adaptive' (8 bits, then re-solved every "
                        "--replan-every epochs from traced row ranges), or a BitPlan file (default: 32)")
    p.add_argument("--replan-every", type=positive_int, default=50, help="adaptive: epochs between re-solves")
    p.add_argument("--time-budget", default=None,
                   help="adaptive: solver budget, e.g. 0.5x (of the fp32 exchange time) or 1.2s; "
                        "default: the reference's lambda form")
    p.add_argument("--cluster", default=None,
                   help="adaptive: cluster spec the solver plans for (default: what runs - local-cpu, "
                        "or with --link the emulated hosts' spec)")
    p.add_argument("--profile", default=None, help="adaptive: hardware profile (default: the cluster's)")
    p.add_argument("--model", choices=("gcn", "sage", "gat"), default="gcn", help="GNN (docs/models.md; default: gcn)")
    p.add_argument("--heads", type=positive_int, default=None,
                   help="gat: attention heads of the hidden layers, concatenated (default: 8)")
    p.add_argument("--out-heads", type=positive_int, default=None,
                   help="gat: attention heads of the last layer, averaged (default: 1)")
    p.add_argument("--attn-dropout", type=float, default=0.0,
                   help="gat: dropout on the attention coefficients (default: 0; the GAT paper: 0.6)")
    p.add_argument("--layers", type=positive_int, default=3, help="GNN layers (default: 3)")
    p.add_argument("--hidden", type=positive_int, default=256, help="hidden width; per head for gat (default: 256)")
    p.add_argument("--dropout", type=float, default=0.5, help="dropout on every layer's input (default: 0.5)")
    p.add_argument("--no-layer-norm", dest="layer_norm", action="store_false", help="disable LayerNorm")
    p.add_argument("--epochs", type=positive_int, default=100, help="training epochs (default: 100)")
    p.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default: 0.01)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="Adam weight decay (default: 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, dropout and stochastic rounding (default: 0)")
    p.add_argument("--method", choices=("metis", "random", "contiguous"), default="metis", help="partitioner")
    p.add_argument("--plan-dir", default=None, help="reuse a partition saved by `adaqp partition --out`")
    p.add_argument("--eval-every", type=positive_int, default=10, help="epochs between evaluations, not timed (default: 10)")
    p.add_argument("--warmup", type=int, default=3, help="epochs left out of the median epoch time")
    p.add_argument("--feature-norm", choices=("auto", "row", "none"), default="auto",
                   help="row-normalise input features: auto = when every feature is non-negative (default: auto)")
    p.add_argument("--checkpoint-every", type=int, default=0, help="epochs between checkpoints (0 = never)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoints in OUT/checkpoints")
    p.add_argument("--transport", choices=("gloo", "nccl", "gloo-staged"), default=None,
                   help="override the transport each rank picks from its host (default: automatic)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--launcher", choices=("spawn", "torchrun"), default="spawn",
                   help="spawn: start --nprocs local ranks (default); torchrun: this process is "
                        "one rank of a torchrun job (world size from torchrun)")
    p.add_argument("--master-addr", default="127.0.0.1", help="rendezvous address (default: loopback)")
    p.add_argument("--master-port", type=int, default=None, help="rendezvous port (default: a free one)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before a hung collective fails")
    p.add_argument("--link", default=None, metavar="BANDWIDTH",
                   help="run each rank on its own emulated host (Linux network namespace) whose NIC is "
                        "shaped to BANDWIDTH per direction (tc tbf), e.g. 100mbit, 1gbit; needs root "
                        "and iproute2 (ip, tc)")
    p.add_argument("--link-fallback", action="store_true",
                   help="with --link: if the emulation is unavailable, warn and run on plain loopback")
    add_config(p, "train")
    add_out(p)
    p.set_defaults(run=run)


def config_from_args(args):
    from adaqp.runtime.config import TrainConfig
    from adaqp.runtime.model import ModelConfig

    ckpt = str(Path(args.out) / "checkpoints") if args.out and (args.checkpoint_every or args.resume) else None
    return TrainConfig(
        dataset=args.dataset, nprocs=args.nprocs,
        model=ModelConfig(args.model, args.layers, args.hidden, args.dropout, args.layer_norm,
                          args.heads, args.out_heads, args.attn_dropout),
        epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay, seed=args.seed,
        schedule=args.schedule, bits=args.bits, replan_every=args.replan_every, time_budget=args.time_budget,
        cluster=args.cluster or "local-cpu", profile=args.profile, partition_method=args.method, plan_dir=args.plan_dir,
        eval_every=args.eval_every, warmup_epochs=args.warmup, feature_norm=args.feature_norm,
        checkpoint_every=args.checkpoint_every, checkpoint_dir=ckpt, resume=args.resume,
        transport=args.transport, device=args.device, timeout_s=args.timeout)


def _usable_link(args) -> str | None:
    """``--link``, checked: refused (one line, exit 2) when it cannot be emulated here, unless
    ``--link-fallback`` asks for a warning and a loopback run instead."""
    import sys

    from adaqp.cluster import parse_bandwidth_Bps
    from adaqp.errors import AdaqpInputError
    from adaqp.runtime.emulate import check_available

    if args.link is None:
        return None
    parse_bandwidth_Bps(args.link, "--link")  # a typo is an error even with --link-fallback
    try:
        check_available()
    except AdaqpInputError as e:
        if not args.link_fallback:
            raise
        print(f"adaqp train: warning: {e}; running on loopback without --link", file=sys.stderr)
        return None
    return args.link


def run(args) -> int:
    import dataclasses
    import tempfile

    from adaqp.cli.common import prepare_out
    from adaqp.cli.report import format_table
    from adaqp.errors import require
    from adaqp.runtime.launch import RankFailure
    from adaqp.runtime.run import run_local, run_torchrun

    require(not (args.checkpoint_every or args.resume) or args.out, "checkpoints need --out DIR")
    require(args.link is None or args.launcher == "spawn", "--link needs --launcher spawn: it emulates "
                                                           "the hosts of locally spawned ranks")
    out = prepare_out(args.out)
    cfg = config_from_args(args)
    try:
        if args.launcher == "torchrun":
            s = run_torchrun(cfg, out)
            if s is None:  # not rank 0: rank 0 reports
                return 0
        else:
            link = _usable_link(args)
            with tempfile.TemporaryDirectory(prefix="adaqp-cluster-") as tmp:
                if link and args.cluster is None:  # the solver plans for the hosts that really run
                    from adaqp.cluster import ClusterSpec, parse_bandwidth_Bps

                    spec = ClusterSpec.emulated(cfg.nprocs, parse_bandwidth_Bps(link, "--link"))
                    cfg = dataclasses.replace(cfg, cluster=str(spec.to_yaml(Path(tmp) / "cluster.yaml")))
                s = run_local(cfg, out, args.master_addr, args.master_port, link=link)
    except RankFailure as e:
        import sys

        print(f"adaqp train: error: {e}", file=sys.stderr)
        return 1
    rows = [{"": k, "value": v} for k, v in s.items() if not isinstance(v, dict) and v is not None]
    print(format_table(rows, ["", "value"]))
    ph = {k: v * 1e3 for k, v in s["phase_time_s_median"].items() if v > 0}
    print("median per-epoch phase times (ms, slowest rank): " + ", ".join(f"{k} {v:.1f}" for k, v in ph.items()))
    mem = s.get("peak_memory_bytes") or {}
    if mem.get("max") is not None:
        print(f"peak memory per rank (MiB, {mem['measure']}): "
              + ", ".join(f"{b / 2**20:.1f}" for b in mem["per_rank"] if b is not None))
    if out is not None:
        print(f"wrote {out}/: epochs.csv, evals.csv, trace.json (open in Perfetto), summary.json")
    return 0
