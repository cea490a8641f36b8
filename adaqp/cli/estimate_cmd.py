"""``adaqp estimate DATASET --parts N --cluster SPEC``: the analytic epoch-time estimate."""

from __future__ import annotations

from adaqp.cli.common import add_out
from adaqp.cli.scenario import add_scenario_args, load_bits  # noqa: F401  (load_bits re-exported)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "estimate", help="closed-form epoch time of a plan on a cluster (no simulation)",
        description="Partition the graph, build the halo plan and estimate one training epoch on "
                    "the cluster from a hardware profile: per-exchange times and bottlenecks, "
                    "compute phases, what overlap hides, and each rank's peak memory. summary.json keys: "
                    "epoch_time_s; peak_memory_bytes (per_rank, max; docs/memory.md); extrapolated "
                    "(op sizes outside the profile's measured range, also warned on stderr).")
    add_scenario_args(p)
    add_out(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from adaqp.cli.common import prepare_out
    from adaqp.cli.report import format_table, write_csv, write_summary
    from adaqp.cli.scenario import load_scenario
    from adaqp.costmodel.analytic import estimate
    from adaqp.costmodel.coverage import watch
    from adaqp.costmodel.memory import memory_line, peak_memory_bytes, summary as memory_summary

    out = prepare_out(args.out)
    sc = load_scenario(args)
    bits = load_bits(args.bits, sc.stats.pair_rows, args.layers)
    with watch(sc.profile) as extrapolated:
        e = estimate(sc.stats, sc.shape, args.schedule, sc.cluster, sc.profile, bits)
    rows = [{"layer": a, "direction": b, "ms": c * 1e3, "bottleneck": d} for a, b, c, d in e.exchanges]
    print(f"{sc.headline(args)}, bits {args.bits}\n")
    print(format_table(rows))
    print("\ncompute phases, slowest rank (ms): " + ", ".join(f"{k} {v * 1e3:.2f}" for k, v in e.phases_s.items()))
    print(f"epoch {e.epoch_time_s * 1e3:.2f} ms = compute {e.compute_time_s * 1e3:.2f} + exposed communication "
          f"{e.exposed_comm_s * 1e3:.2f} (all-reduce {e.allreduce_s * 1e3:.2f}); communication alone "
          f"{e.comm_time_s * 1e3:.2f} ms")
    mem = peak_memory_bytes(sc.stats, sc.shape, bits, sc.profile.device, cpu_memory=sc.profile.cpu_memory)
    print(memory_line(mem, sc.profile.device))
    if out is not None:
        write_csv(out / "exchanges.csv", rows)
        write_summary(out, {"dataset": sc.graph.name, "cluster": sc.cluster.name, "profile": sc.profile.name,
                            "parts": sc.parts, "schedule": args.schedule, "bits": args.bits, **e.summary(),
                            "peak_memory_bytes": memory_summary(mem, sc.profile.device), "extrapolated": extrapolated})
        print(f"wrote {out}/: exchanges.csv, summary.json")
    return 0
