"""``adaqp validate``: predicted vs measured epoch time over a grid of configurations run here."""

from __future__ import annotations

from adaqp.cli.common import add_out, comma_ints as _ints, comma_list as _csv, positive_int
from adaqp.cli.presets import add_config


def add_parser(sub) -> None:
    p = sub.add_parser(
        "validate", help="run a grid here and compare measured epoch times with the simulator's predictions",
        description="Trains every configuration of a grid for a few epochs on local ranks (each rank its "
                    "own emulated host behind a shaped link with --link; needs root) and puts the "
                    "median measured epoch (warm-up skipped), per phase, beside the simulator's "
                    "prediction for the same plan. First it measures every op shape the grid's "
                    "workloads need into a copy of --profile (micro-benchmarks, no training; "
                    "--no-profile-for skips that); before each workload trains on CPU ranks, its co-run "
                    "slowdown at its own step (micro-benchmark). Writes validate.csv, validate_scatter.png, "
                    "profile.json and summary.json (configs, median_abs_err_pct, max_abs_err_pct, "
                    "per_phase, per_workload, oversubscribed, extrapolated; memory: predicted vs measured "
                    "peak memory of the busiest rank, docs/memory.md) under --out. Default grid: "
                    "SBM (64 features), Cora (1,433) and R-MAT (256) x hidden 64,128 x ranks 2,3,4 x "
                    "links 100mbit,1gbit x gcn,sage x vanilla, overlap, quant (4 bits), adaqp (4 bits, "
                    "adaptive).")
    p.add_argument("--dataset", action="append", default=None,
                   help="dataset spec; repeat for several (default: the three graphs above)")
    p.add_argument("--ranks", type=_ints, default=None, help="rank counts, e.g. 2,3,4")
    p.add_argument("--link", default=None,
                   help="link bandwidths, e.g. 100mbit,1gbit; 'none' for plain loopback (default: 100mbit,1gbit)")
    p.add_argument("--schedules", type=_csv, default=None, help="e.g. vanilla,overlap,quant,adaqp")
    p.add_argument("--bits", type=_csv, default=None, help="widths of the quantizing schedules, e.g. 2,4,8,adaptive")
    p.add_argument("--models", type=_csv, default=None, help="gcn,sage")
    p.add_argument("--epochs", type=positive_int, default=None, help="epochs per configuration (default: 16)")
    p.add_argument("--warmup", type=positive_int, default=None, help="epochs left out of the median (default: 3)")
    p.add_argument("--rounds", type=positive_int, default=None,
                   help="measure the whole grid this many times, one round after another, and report each "
                        "configuration's median with epoch_meas_spread_pct, its measured epoch's (max - min) / "
                        "median over the rounds, and the noise floor: how far a single round sits from the "
                        "median, the error noise alone gives a one-round run (default: 1)")
    p.add_argument("--corun-rounds", type=positive_int, default=None,
                   help="rounds of the co-run micro-benchmark run before each workload trains on CPU ranks; "
                        "fewer is faster and noisier (default: 15)")
    p.add_argument("--hidden", type=_ints, default=None, help="hidden widths, e.g. 64,128 (default: 64,128)")
    p.add_argument("--layers", type=positive_int, default=None, help="layers (default: 3)")
    p.add_argument("--profile", default=None,
                   help="hardware profile to predict with: a bundled name or the JSON `adaqp profile` "
                        "wrote (default: cpu-2core)")
    p.add_argument("--quick", action="store_true",
                   help="about a dozen configurations on the first dataset and hidden width, a few minutes")
    p.add_argument("--no-profile-for", dest="profile_for", action="store_false",
                   help="predict with --profile as it is (skip measuring the grid's op shapes first)")
    p.add_argument("--op-timing", choices=("cold", "in-epoch"), default=None,
                   help="cold (default): predict with each op size timed alone after evicting the caches; "
                        "in-epoch: each cell first times its workloads' ops in epoch order, op after op on "
                        "synthetic tensors, and predicts with those times")
    add_config(p, "validate")
    add_out(p)
    p.set_defaults(run=run)


def grid_from_args(args):
    from dataclasses import replace

    from adaqp.experiments.validate import Grid, quick

    over = {k: v for k, v in dict(datasets=tuple(args.dataset) if args.dataset else None, ranks=args.ranks,
                                  schedules=args.schedules, bits=args.bits, models=args.models,
                                  epochs=args.epochs, warmup=args.warmup, hiddens=args.hidden,
                                  layers=args.layers, profile=args.profile, rounds=args.rounds,
                                  corun_rounds=args.corun_rounds, op_timing=args.op_timing).items()
            if v is not None}
    over["profile_for"] = args.profile_for
    if args.link is not None:
        over["links"] = tuple(None if t.lower() in ("none", "loopback") else t for t in _csv(args.link))
    grid = Grid()
    if args.quick:
        grid = quick(grid)
    return replace(grid, **over)


def run(args) -> int:
    import sys
    import tempfile
    from pathlib import Path

    from adaqp.cli.common import prepare_out
    from adaqp.cli.report import format_table, write_csv, write_summary
    from adaqp.experiments.validate import check_links, run_grid
    from adaqp.experiments.validate_report import scatter, summarize, workload_table

    out = prepare_out(args.out)
    grid = grid_from_args(args)
    check_links(grid)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    log(f"validate: {grid.size()} configurations on {len(grid.datasets)} dataset(s) x hidden "
        f"{','.join(map(str, grid.hiddens))}, profile {grid.profile}")
    with tempfile.TemporaryDirectory(prefix="adaqp-validate-") as tmp:
        work = (out / "runs") if out else Path(tmp)
        rows, extrapolated = run_grid(grid, work, log=log)
        if out is not None and (work / "profile.json").exists():
            (out / "profile.json").write_bytes((work / "profile.json").read_bytes())
    summary = summarize(rows, grid, extrapolated)
    cols = ["dataset", "hidden", "ranks", "link", "model", "schedule", "bits", "epoch_meas_ms", "epoch_pred_ms",
            "epoch_err_pct", "comm_err_pct", "compute_err_pct", "mem_meas_MiB", "mem_pred_MiB", "mem_err_pct"]
    print(format_table([{**r, "dataset": r["dataset"].split(":")[0]} for r in rows], cols))
    print()
    print(format_table(workload_table(summary)))
    o = summary["oversubscribed"]
    print(f"\n{summary['configs']} configurations: median |error| {summary['median_abs_err_pct']:.1f} %, "
          f"max {summary['max_abs_err_pct']:.1f} % (target: median <= 5 %, max <= 15 %, every workload's "
          f"median <= 8 %); per phase median |error|: "
          + ", ".join(f"{ph} {v['median_abs_err_pct']:.1f} %" for ph, v in summary["per_phase"].items()))
    m = summary["memory"]
    if m["configs"]:
        print(f"peak memory, busiest rank ({m['configs']} configurations): median |error| "
              f"{m['median_abs_err_pct']:.1f} %, max {m['max_abs_err_pct']:.1f} % (predicted vs measured)")
    if summary.get("epoch_iqr_pct"):
        iq = summary["epoch_iqr_pct"]
        print(f"measured epochs within a run: interquartile range median {iq['median']:.1f} %, max {iq['max']:.1f} % "
              f"of each configuration's median epoch")
    if summary["measured_spread_pct"]:
        sp = summary["measured_spread_pct"]
        print(f"measured epoch between {grid.rounds} rounds: spread median {sp['median']:.1f} %, max {sp['max']:.1f} % "
              "((max - min) / median of each configuration)")
        fl, wr = summary["noise_floor_pct"], summary["worst_round_err_pct"]
        print(f"one round against the median of the rounds (the noise floor of a one-round run): median "
              f"{fl['median']:.1f} %, max {fl['max']:.1f} %; the prediction against its worst round: median "
              f"{wr['median']:.1f} %, max {wr['max']:.1f} %")
    if o["configs"]:
        print(f"more ranks than the {summary['cores']} cores ({o['configs']} configurations): median "
              f"{o['median_abs_err_pct']:.1f} %, max {o['max_abs_err_pct']:.1f} %")
    if out is not None:
        write_csv(out / "validate.csv", rows)
        scatter(out / "validate_scatter.png", rows)
        write_summary(out, summary)
        print(f"wrote {out}/: validate.csv, validate_scatter.png, summary.json, profile.json, "
              f"runs/ (plans, cluster specs)")
    return 0
