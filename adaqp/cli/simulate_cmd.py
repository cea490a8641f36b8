"""``adaqp simulate DATASET --parts N --cluster SPEC``: one epoch, simulated event by event."""

from __future__ import annotations

from adaqp.cli.common import add_out
from adaqp.cli.scenario import add_scenario_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "simulate", help="discrete-event simulation of one epoch of a plan on a cluster",
        description="Partition the graph, build the halo plan and simulate one training epoch on the "
                    "cluster: ranks as processes, links shared by concurrent flows, shared GPUs, "
                    "overlap. Prints the epoch time, phases, resource utilisation and the critical "
                    "path, and each rank's predicted peak memory; --out writes summary.json (epoch_time_s, "
                    "comm_time_s, compute_time_s and the analytic estimate beside them; peak_memory_bytes "
                    "(per_rank, max; docs/memory.md); extrapolated: op sizes outside the profile's "
                    "measured range, also warned on stderr), utilisation.csv and trace.json (Perfetto).")
    add_scenario_args(p)
    p.add_argument("--sharing", choices=("fair", "fifo"), default="fair",
                   help="how concurrent flows share a link: max-min fair (default) or one message at a time")
    add_out(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from adaqp.cli.common import prepare_out
    from adaqp.cli.report import format_table, stage, write_csv, write_summary
    from adaqp.cli.scenario import load_bits, load_scenario
    from adaqp.costmodel.analytic import estimate
    from adaqp.costmodel.coverage import watch
    from adaqp.costmodel.memory import memory_line, peak_memory_bytes, summary as memory_summary
    from adaqp.simulator import chrome_trace, simulate

    out = prepare_out(args.out)
    sc = load_scenario(args)
    graph, cluster, profile, stats, shape, parts = sc.graph, sc.cluster, sc.profile, sc.stats, sc.shape, sc.parts
    bits = load_bits(args.bits, stats.pair_rows, args.layers)
    with watch(profile) as extrapolated:
        with stage("simulating one epoch"):
            r = simulate(stats, shape, args.schedule, cluster, profile, bits, sharing=args.sharing,
                         trace=out is not None)
        e = estimate(stats, shape, args.schedule, cluster, profile, bits)
    _print(r, e, graph, cluster, profile, args, format_table)
    mem = peak_memory_bytes(stats, shape, bits, profile.device, cpu_memory=profile.cpu_memory)
    print("\n" + memory_line(mem, profile.device))
    if out is not None:
        write_csv(out / "utilisation.csv", r.utilisation, ["resource", "kind", "busy_s", "utilisation"])
        chrome_trace(r.events, out / "trace.json")
        write_summary(out, {"dataset": graph.name, "cluster": cluster.name, "profile": profile.name,
                            "parts": parts, "schedule": args.schedule, "bits": args.bits, "sharing": args.sharing,
                            **r.summary(), "analytic": e.summary(),
                            "peak_memory_bytes": memory_summary(mem, profile.device), "extrapolated": extrapolated})
        print(f"wrote {out}/: summary.json, utilisation.csv, trace.json")
    return 0


def _print(r, e, graph, cluster, profile, args, format_table) -> None:
    ms = lambda s: f"{s * 1e3:.3f}"  # noqa: E731
    print(f"{graph.name} on {cluster.name} ({cluster.num_ranks} ranks, profile {profile.name}, {profile.kind}), "
          f"{args.model} {args.layers}x{args.hidden}, schedule {args.schedule}, bits {args.bits}\n")
    print(f"epoch {ms(r.epoch_time_s)} ms simulated (analytic {ms(e.epoch_time_s)} ms, "
          f"{(r.epoch_time_s / e.epoch_time_s - 1) * 100:+.1f} %) = compute {ms(r.compute_time_s)} + exposed "
          f"communication {ms(r.exposed_comm_s)} (all-reduce {ms(r.allreduce_s)}); communication alone "
          f"{ms(r.comm_time_s)} ms\n")
    rows = [{"phase": k, "critical path ms": v * 1e3,
             "busiest rank ms": r.busy_s[k] * 1e3 if k in r.busy_s else ""}
            for k, v in sorted(r.phases_s.items(), key=lambda kv: -kv[1])]
    print(format_table(rows))
    util = [{**u, "mean": u["mean"] * 100, "max": u["max"] * 100} for u in r.utilisation_by_kind()]
    print("\nutilisation (% of the epoch)\n" + format_table(util, ["kind", "instances", "mean", "max", "busiest"]))
    print("\ncritical path\n" + "\n".join(r.critical_path_lines()))
