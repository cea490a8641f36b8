"""``adaqp reproduce``: the method's speedup and accuracy on an emulated communication-bound cluster."""

from __future__ import annotations

from adaqp.cli.common import add_out, positive_int
from adaqp.cli.presets import add_config


def add_parser(sub) -> None:
    p = sub.add_parser(
        "reproduce", help="measured speedup of quant/overlap/adaqp/pipegcn over vanilla, and their accuracy",
        description="Runs every schedule (vanilla, quant, overlap, adaqp, pipegcn) to the end on emulated hosts "
                    "behind shaped links (needs root), GCN and GraphSAGE, back to back in one process "
                    "group per model, and reports the epoch-throughput speedup over vanilla (measured and "
                    "predicted by the simulator) and the test accuracy at the best validation epoch. "
                    "Writes reproduce.csv, reproduce.png and summary.json (speedup_adaqp, speedup_quant, "
                    "speedup_overlap, speedup_pipegcn, acc_vanilla, acc_adaqp, acc_pipegcn).")
    p.add_argument("--dataset", default=None, help="dataset spec (default: a 12k-node, 16-class SBM graph "
                                                   "whose halo exchange dominates at 100mbit)")
    p.add_argument("--ranks", type=positive_int, default=4, help="emulated hosts, one rank each (default: 4)")
    p.add_argument("--link", default="100mbit", help="per-host link bandwidth (default: 100mbit)")
    p.add_argument("--models", default="gcn,sage", help="gcn,sage (default: both)")
    p.add_argument("--epochs", type=positive_int, default=100)
    p.add_argument("--seeds", default="0,1,2", help="training seeds; accuracy is their mean (default: 0,1,2)")
    p.add_argument("--hidden", type=positive_int, default=64)
    p.add_argument("--layers", type=positive_int, default=3)
    p.add_argument("--quant-bits", default="2", help="uniform width of the quant schedule (default: 2)")
    p.add_argument("--replan-every", type=positive_int, default=25, help="adaqp: epochs between re-solves")
    p.add_argument("--time-budget", default="0.4x",
                   help="adaqp: the solver's budget for the exchanges, e.g. 0.25x of fp32, or 'lambda' for the "
                        "reference's lambda form (default: 0.4x)")
    p.add_argument("--profile", default="cpu-2core", help="profile the predictions use (default: cpu-2core)")
    p.add_argument("--quick", action="store_true", help="GCN only, one seed, 40 epochs: a few minutes")
    add_config(p, "reproduce")
    add_out(p)
    p.set_defaults(run=run)


def setup_from_args(args):
    import argparse

    from adaqp.cli.common import comma_ints, comma_list
    from adaqp.errors import AdaqpInputError
    from adaqp.experiments.reproduce import Setup

    try:
        seeds = comma_ints(args.seeds)
    except argparse.ArgumentTypeError as e:
        raise AdaqpInputError(f"--seeds: {e}") from None
    models = comma_list(args.models)
    budget = None if args.time_budget == "lambda" else args.time_budget
    kw = dict(ranks=args.ranks, time_budget=budget, link=args.link, models=models, epochs=args.epochs,
              seeds=seeds, hidden=args.hidden, layers=args.layers, quant_bits=args.quant_bits,
              replan_every=args.replan_every, profile=args.profile)
    if args.quick:
        kw.update(models=models[:1], seeds=seeds[:1], epochs=min(args.epochs, 40), replan_every=min(args.replan_every, 10))
    if args.dataset:
        kw["dataset"] = args.dataset
    return Setup(**kw)


def run(args) -> int:
    import sys
    import tempfile
    from pathlib import Path

    from adaqp.cli.common import prepare_out
    from adaqp.cli.report import format_table, write_csv, write_summary
    from adaqp.cluster import parse_bandwidth_Bps
    from adaqp.experiments.reproduce import bar_plot, run as run_setup, summarize
    from adaqp.runtime.emulate import check_available

    out = prepare_out(args.out)
    s = setup_from_args(args)
    parse_bandwidth_Bps(s.link, "--link")
    check_available()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="adaqp-reproduce-") as tmp:
        rows = run_setup(s, (out / "runs") if out else Path(tmp), log=log)
    summary = summarize(rows, s)
    print(format_table(rows, ["model", "schedule", "bits", "epoch_ms", "predicted_ms", "speedup",
                              "predicted_speedup", "test_acc", "acc_delta_pts", "exposed_comm_pct"]))
    print(f"\nadaqp {summary['speedup_adaqp']:.2f}x over vanilla (predicted {summary['predicted_speedup_adaqp']:.2f}x), "
          f"accuracy {summary['acc_adaqp']:.2f} vs {summary['acc_vanilla']:.2f} % "
          f"(target: >= 3x, within 0.3 points: {'met' if summary['target_met'] else 'not met'})")
    print(f"pipegcn {summary['speedup_pipegcn']:.2f}x over vanilla (predicted {summary['predicted_speedup_pipegcn']:.2f}x), "
          f"accuracy {summary['acc_pipegcn']:.2f} %")
    if out is not None:
        write_csv(out / "reproduce.csv", rows)
        bar_plot(out / "reproduce.png", rows)
        write_summary(out, summary)
        print(f"wrote {out}/: reproduce.csv, reproduce.png, summary.json")
    return 0
