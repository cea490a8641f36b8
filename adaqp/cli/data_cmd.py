"""``adaqp data DATASET``: load or generate a graph and describe it."""

from __future__ import annotations

from adaqp.cli.common import add_dataset, add_out


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="load or generate a graph and describe it",
                       description="Load or generate a graph and print its size, degree statistics, "
                                   "features, classes and split. With --out, also writes "
                                   "summary.json, degrees.csv and a degree-distribution plot.")
    add_dataset(p)
    add_out(p)
    p.add_argument("--save", metavar="FILE", default=None,
                   help="also save the graph as an .npz that any DATASET argument accepts")
    p.set_defaults(run=run)


def describe(graph) -> dict:
    """Headline figures of a graph (the keys of ``summary.json``)."""
    import numpy as np

    deg = graph.in_degree
    labelled = (graph.labels >= 0) if not graph.multilabel else np.ones(graph.num_nodes, bool)
    return {
        "name": graph.name, "nodes": graph.num_nodes, "edges": graph.num_edges,
        "features": graph.num_features, "classes": graph.num_classes,
        "multilabel": graph.multilabel,
        "train": int(graph.train_mask.sum()), "val": int(graph.val_mask.sum()),
        "test": int(graph.test_mask.sum()), "unlabelled": int((~labelled).sum()),
        "deg_min": int(deg.min()), "deg_mean": float(deg.mean()),
        "deg_median": float(np.median(deg)), "deg_max": int(deg.max()),
        "isolated": int(((deg == 0) & (graph.out_degree == 0)).sum()),
    }


def run(args) -> int:
    from adaqp.cli.common import prepare_out
    from adaqp.cli.report import format_table, stage, write_summary
    from adaqp.data.spec import load_dataset

    out = prepare_out(args.out)
    with stage(f"loading {args.dataset}"):
        graph = load_dataset(args.dataset)
    s = describe(graph)
    rows = [{"": k, "value": v} for k, v in s.items()]
    print(format_table(rows, ["", "value"]))
    if args.save:
        graph.save(args.save)
        print(f"saved graph to {args.save}")
    if out is not None:
        _write_degree_files(out, graph)
        write_summary(out, s)  # last: its presence means the folder is complete
        print(f"wrote {out}/summary.json, degrees.csv, degrees.png")
    return 0


def _write_degree_files(out, graph) -> None:
    import numpy as np

    from adaqp.cli.plots import degree_plot
    from adaqp.cli.report import write_csv

    counts = np.bincount(graph.in_degree)
    rows = [{"in_degree": d, "nodes": int(c)} for d, c in enumerate(counts) if c]
    write_csv(out / "degrees.csv", rows)
    degree_plot(out / "degrees.png", graph)
