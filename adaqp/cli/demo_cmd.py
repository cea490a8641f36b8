"""``adaqp demo``: the main job, end to end on a generated graph.

Generate a graph; partition it with METIS and at random and show the bytes one epoch's halo
exchange moves at 32, 8, 4 and 2 bits; make this machine a small cluster (emulated hosts behind
shaped links where root allows), profile its links, solve a BitPlan under a budget, simulate,
train for real and print predicted vs measured; then ask what the plan would do on a GPU cluster
(see :mod:`adaqp.cli.demo_predict`).
"""

from __future__ import annotations

from pathlib import Path

from adaqp.cli.common import positive_int

DEFAULT_DATASET = "sbm:nodes=20000,classes=8,feat=64,deg=10,seed=0"
BITS = (32, 8, 4, 2)


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="the main job: partition, plan, predict, measure, what-if (a few minutes)",
                       description="Generate a graph, partition it (METIS vs random), report the halo "
                                   "exchange per epoch at 32/8/4/2 bits, turn this machine into a small "
                                   "cluster (emulated hosts behind 100mbit links where root allows), "
                                   "profile its links, solve a BitPlan under a time budget, simulate "
                                   "vanilla and the plan, train both for real, print predicted vs "
                                   "measured, and predict the plan on a GPU cluster.")
    p.add_argument("--dataset", default=DEFAULT_DATASET, help=f"dataset spec (default: {DEFAULT_DATASET})")
    p.add_argument("--parts", type=positive_int, default=2, help="parts / ranks (default: 2)")
    p.add_argument("--layers", type=positive_int, default=3, help="GNN layers (default: 3)")
    p.add_argument("--hidden", type=positive_int, default=128, help="hidden width (default: 128)")
    p.add_argument("--epochs", type=positive_int, default=15, help="epochs per measured run (default: 15)")
    p.add_argument("--no-train", dest="train", action="store_false", help="skip the measured runs")
    p.add_argument("--no-link", dest="link", action="store_false",
                   help="plain loopback ranks even where shaped links (root) are available")
    p.add_argument("--out", metavar="DIR", type=Path, default=Path("adaqp-demo"),
                   help="where the CSV/PNG files, traces and summary.json go (default: ./adaqp-demo)")
    p.set_defaults(run=run)


def epoch_exchange_nbytes(pair_rows, num_layers: int, in_width: int, hidden: int, bits: int) -> int:
    """Bytes one epoch's halo exchanges move (forward every layer, backward layers 1..L-1)."""
    from adaqp.plans import BitPlan

    plan = BitPlan.uniform(pair_rows, num_layers, bits)
    return int(sum(plan.pair_nbytes(layer, d, in_width if layer == 0 else hidden).sum()
                   for layer, d in plan.exchanges()))


def run(args) -> int:
    from adaqp.cli.common import prepare_out
    from adaqp.cli.data_cmd import describe
    from adaqp.cli.partition_cmd import part_rows, summarize
    from adaqp.cli.report import format_table, stage
    from adaqp.data.spec import load_dataset
    from adaqp.partition import partition_graph, partition_stats

    out = prepare_out(args.out)
    with stage(f"generating {args.dataset}"):
        graph = load_dataset(args.dataset)
    d = describe(graph)
    print(f"{graph.name}: {d['nodes']:,} nodes, {d['edges']:,} directed edges, {d['features']} features, "
          f"{d['classes']} classes, split {d['train']:,}/{d['val']:,}/{d['test']:,}\n")
    rows, per_part = [], {}
    for method in ("metis", "random"):
        with stage(f"partitioning into {args.parts} parts ({method})"):
            part = partition_graph(graph, args.parts, method=method)
            stats = partition_stats(graph, part)
        per_part[method] = part_rows(stats)
        row = {k: v for k, v in summarize(graph, part, stats).items()
               if k in ("method", "edge_cut", "replication_factor", "halo_rows")}
        for b in BITS:
            nbytes = epoch_exchange_nbytes(stats.pair_rows, args.layers, graph.num_features, args.hidden, b)
            row[f"MB_{b}bit"] = nbytes / 1e6
        rows.append(row)
    print(f"\nMETIS, {args.parts} parts:")
    print(format_table(per_part["metis"]))
    print(f"\nHalo exchange per epoch ({args.layers} layers, hidden {args.hidden}; forward every layer, "
          f"backward layers 1..{args.layers - 1}), MB:")
    print(format_table(rows))
    m = rows[0]
    print(f"\nMETIS cuts the exchange to {m['MB_32bit'] / rows[1]['MB_32bit']:.2f}x of a random partition; "
          f"2-bit messages move {m['MB_2bit'] / m['MB_32bit']:.3f}x the bytes of fp32 ones "
          f"(per-row headers included).")
    pred, measured = _predict_and_measure(args, graph, out)
    _write(out, graph, rows, per_part, d, pred, measured)
    return 0


def _predict_and_measure(args, graph, out):
    import numpy as np

    from adaqp.cli import demo_predict as D
    from adaqp.cli.report import format_table, stage
    from adaqp.costmodel.profile import load_profile
    from adaqp.costmodel.program import ModelShape
    from adaqp.costmodel.workload import PlanStats
    from adaqp.halo import build_halo_plan
    from adaqp.partition import partition_graph, save_partition

    with stage("profiling the links quickly" if args.link else "choosing the local cluster"):
        cluster, link, note = D.local_cluster(args.parts, args.link)
    profile = load_profile(cluster.profile)
    print(f"\nThis machine as a cluster: {note}; compute from the measured profile {profile.name!r}.")
    part = partition_graph(graph, args.parts, method="metis")
    plan = build_halo_plan(graph, part)
    save_partition(part, out / "plan", graph)
    plan.save(out / "plan")
    shape = ModelShape("gcn", (graph.num_features,) + (args.hidden,) * (args.layers - 1) + (graph.num_classes,))
    with stage(f"solving a BitPlan (min variance, exchanges within {D.BUDGET} of fp32) and simulating"):
        sims, res = D.plan_and_predict(graph, plan, shape, cluster, profile, out)
    res.bitplan.save(out / "bitplan.json")
    hist = np.bincount(res.solution.bits, minlength=9)
    bits_txt = ", ".join(f"{b}-bit {hist[b]}" for b in (2, 4, 8) if hist[b]) + " groups"
    print(f"BitPlan: {bits_txt}; solved in {res.solution.solve_time_s:.2f} s")
    measured = {}
    if args.train:
        cluster_file = str(cluster.to_yaml(out / "cluster.yaml"))
        with stage(f"training {args.epochs} epochs per schedule on {args.parts} ranks"
                   + (f" behind {link} links" if link else "")):
            measured = D.measure(args.dataset, args.parts, shape, out / "plan", out / "bitplan.json", link,
                                 cluster_file, args.epochs, out)
    pred = []
    for name, sim in sims.items():
        row = {"cluster": cluster.name, "schedule": name, "bits": "32" if name == "vanilla" else "BitPlan",
               "predicted_ms": sim.epoch_time_s * 1e3, "predicted_comm_ms": sim.exposed_comm_s * 1e3}
        m = measured.get(name)
        if m is not None:
            row["measured_ms"] = m["epoch_time_s_median"] * 1e3
            row["error_pct"] = (row["predicted_ms"] / row["measured_ms"] - 1) * 100
            row["test_acc"] = m["test_acc"]
        pred.append(row)
    print(f"\nPredicted (simulator) vs measured epoch, GCN {args.layers}x{args.hidden}, {args.parts} ranks:")
    print(format_table(pred))
    if len(measured) == 2:
        v, a = (measured[k]["epoch_time_s_median"] for k in ("vanilla", "adaqp"))
        print(f"adaqp with the solved plan: {v / a:.2f}x vanilla's epoch throughput measured, "
              f"{sims['vanilla'].epoch_time_s / sims['adaqp'].epoch_time_s:.2f}x predicted")
    wi = D.whatif(PlanStats.from_halo_plan(plan), shape)
    print(f"\nWhat if: the same plan on {D.WHATIF_CLUSTER} (GPU profile derived from the H200 measurement, simulated):")
    print(format_table(wi))
    return pred + wi, measured


def _write(out, graph, rows, per_part, d, pred, measured) -> None:
    from adaqp.cli.report import write_csv, write_summary

    write_csv(out / "exchange.csv", rows)
    write_csv(out / "parts_metis.csv", per_part["metis"])
    cols = ["cluster", "schedule", "bits", "predicted_ms", "predicted_comm_ms", "measured_ms", "error_pct",
            "test_acc", "simulated_ms", "comm_ms", "speedup"]
    write_csv(out / "epoch_times.csv", [{c: r.get(c, "") for c in cols} for r in pred], cols)
    _bar_plot(out / "exchange.png", rows, graph.name)
    write_summary(out, {"dataset": graph.name, "nodes": d["nodes"], "edges": d["edges"],
                        "exchange_MB": {r["method"]: {b: r[f"MB_{b}bit"] for b in BITS} for r in rows},
                        "epoch_times": pred,
                        "measured": {k: {"epoch_time_s_median": v["epoch_time_s_median"], "test_acc": v["test_acc"]}
                                     for k, v in measured.items()}})
    traces = sorted(str(p) for p in out.glob("**/*trace.json"))
    print(f"\nwrote {out}/: exchange.csv, parts_metis.csv, epoch_times.csv, exchange.png, summary.json, "
          f"bitplan.json, cluster.yaml, plan/, train_*/\nChrome traces (open in https://ui.perfetto.dev): "
          + ", ".join(traces))


def _bar_plot(path, rows, title) -> None:
    from adaqp.cli.plots import plt_module

    plt = plt_module()
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    width = 0.38
    for i, r in enumerate(rows):
        ax.bar([x + i * width for x in range(len(BITS))], [r[f"MB_{b}bit"] for b in BITS], width,
               label=r["method"])
    ax.set_xticks([x + width / 2 for x in range(len(BITS))], [f"{b}-bit" for b in BITS])
    ax.set_ylabel("MB per epoch (halo exchange)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
