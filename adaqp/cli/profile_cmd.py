"""``adaqp profile --out FILE.json``: measure this machine into a HardwareProfile;
``adaqp profile --for DATASET --out FILE.json``: measure the op sizes one workload needs and merge
them into a profile; ``adaqp profile --show FILE_OR_NAME``: print an existing profile's tables."""

from __future__ import annotations

import sys
from pathlib import Path

from adaqp.cli.common import DATASET_HELP, comma_ints, comma_list, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser(
        "profile", help="measure this machine's compute, links and overlap interference into a profile",
        description="Run micro-benchmarks (SpMM, GEMM, element-wise ops, quantize/dequantize, Adam; "
                    "all-to-all, point-to-point and all-reduce on a real process group; compute "
                    "slow-down while communication runs), fit them and write a HardwareProfile JSON. "
                    "With --show, print the tables of an existing profile instead.")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="what to measure (default: cpu)")
    p.add_argument("--quick", action="store_true",
                   help="a small grid and few repetitions (< 1 min on 2 cores; ~1.5 min on a GPU, with 2 and "
                        "4 ranks sharing it through the host-staged exchange)")
    p.add_argument("--nprocs", type=positive_int, default=2,
                   help="ranks for the link benchmarks; compute uses cpu_count // nprocs threads (default: 2)")
    p.add_argument("--name", default=None, help="profile name (default: cpu-<cores>core or cuda-measured)")
    p.add_argument("--out", metavar="FILE", type=Path, default=None, help="write the profile here (.json)")
    p.add_argument("--show", metavar="FILE_OR_NAME", default=None,
                   help="print an existing profile (a file, or a bundled name such as cpu-2core)")
    p.add_argument("--update", metavar="FILE_OR_NAME", default=None,
                   help="re-measure only --ops of this measured profile, at the sizes it holds, and write "
                        "the result to --out (after the code behind an op changed)")
    p.add_argument("--ops", type=comma_list, default=None,
                   help="with --update: comma list of ops to re-measure (e.g. copy,quantize_b2,dequantize_b2); "
                        "'sync' and 'corun' re-measure the host's sync and co-run tables (CPU profiles)")
    p.add_argument("--why", default="the code behind these ops changed",
                   help="with --update: the reason, kept in the profile's meta.remeasured")
    w = p.add_argument_group("measuring for a workload (--for)")
    w.add_argument("--for", dest="for_dataset", metavar="DATASET", default=None,
                   help="measure exactly the op sizes this workload asks (micro-benchmarks on synthetic tensors "
                        "of those shapes, no training) and merge them into --base, written to --out. "
                        + DATASET_HELP)
    w.add_argument("--parts", type=positive_int, default=None, help="with --for: ranks / parts (default: 2)")
    w.add_argument("--model", choices=("gcn", "sage"), default=None, help="with --for: the model (default: gcn)")
    w.add_argument("--hidden", type=positive_int, default=None, help="with --for: hidden width (default: 256)")
    w.add_argument("--layers", type=positive_int, default=None, help="with --for: layers (default: 3)")
    w.add_argument("--bits", type=comma_ints, default=None,
                   help="with --for: uniform bit-widths the quantized schedules may use (default: 2,4,8)")
    w.add_argument("--method", choices=("metis", "random", "contiguous"), default=None,
                   help="with --for: partitioner (default: metis)")
    w.add_argument("--base", metavar="FILE_OR_NAME", default=None,
                   help="with --for: the measured profile to add the points to (default: --out if it exists, "
                        "else the bundled cpu-2core on cpu)")
    p.set_defaults(run=run)


FOR_ONLY = ("parts", "model", "hidden", "layers", "bits", "method", "base")


def run(args) -> int:
    from adaqp.errors import require

    given = [f"--{k}" for k in FOR_ONLY if getattr(args, k) is not None]
    if args.show is not None:
        require(args.for_dataset is None and args.update is None and args.out is None and not given,
                "--show only prints a profile: it takes no --for, --update, --out or workload options")
        print_profile(_load(args.show))
        return 0
    require(args.for_dataset is not None or not given,
            f"{', '.join(given)} describe(s) a workload: use with --for DATASET")
    require(args.out is not None, "--out FILE.json is required (or --show FILE_OR_NAME)")
    require(args.out.suffix == ".json", f"--out must name a .json file, got {args.out}")
    require(not args.out.is_dir(), f"--out {args.out} is a folder")
    require(args.nprocs >= 2, f"--nprocs must be at least 2 (links need a peer), got {args.nprocs}")
    require((args.update is None) == (args.ops is None), "--update and --ops go together")
    if args.update is not None:
        require(args.for_dataset is None, "--update and --for are different jobs: use one")
        return _update(args)
    if args.for_dataset is not None:
        require(not args.quick, "--quick sets the full profile's grid; --for measures the workload's sizes")
        return _for(args)
    import time

    import torch

    from adaqp.cli.report import stage
    from adaqp.runtime.profiling.profiler import measure

    require(args.device != "cuda" or torch.cuda.is_available(),
            "--device cuda: no CUDA device is available on this machine (torch "
            f"{torch.__version__}); use --device cpu")
    t0 = time.perf_counter()
    print(f"· measuring {args.device} ({'quick' if args.quick else 'full'} grid, {args.nprocs} ranks) ...",
          file=sys.stderr, flush=True)
    prof = measure(args.device, quick=args.quick, nprocs=args.nprocs, progress=True, name=args.name)
    print(f"· measured in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    with stage(f"writing {args.out}"):
        prof.save(args.out)
    print_profile(prof)
    print(f"\nwrote {args.out}")
    return 0


def _load(name_or_path: str):
    """load_profile, with structurally wrong JSON (valid, but not shaped like a profile) turned
    into the same one-line input error as a corrupt file."""
    from adaqp.costmodel.profile import load_profile
    from adaqp.errors import AdaqpInputError

    try:
        return load_profile(name_or_path)
    except (TypeError, AttributeError, ValueError) as e:
        if isinstance(e, AdaqpInputError):
            raise
        raise AdaqpInputError(f"{name_or_path}: not a valid profile ({type(e).__name__}: {e})") from None


def _errors(prof, name: str, pred, meas) -> tuple[str, str]:
    """(median, max) fit error in %: as the profiler recorded it (leave-one-out for log-log
    models), else recomputed in-sample from the stored points, else unknown."""
    from adaqp.costmodel.fit import rel_errors_pct

    e = prof.meta.get("fit_errors", {}).get(name) if isinstance(prof.meta.get("fit_errors"), dict) else None
    if isinstance(e, list) and len(e) == 2 and all(isinstance(v, (int, float)) for v in e):
        return f"{e[0]:.1f}", f"{e[1]:.1f}"
    if not meas:
        return "-", "-"
    med, mx = rel_errors_pct(pred, meas)
    return f"{med:.1f}", f"{mx:.1f}"


def _ns(v: float) -> str:
    return f"{v * 1e9:.4g}"


def op_rows(prof) -> list[dict]:
    """One row per op: its model in ns per feature unit, its fit error over its points and its
    leave-one-size-out error (:func:`loo_rows`)."""
    rows, loo = [], loo_rows(prof)
    for name, m in prof.ops.items():
        pts = [p for p in m.points if isinstance(p, dict) and "median_s" in p]
        med, mx = _errors(prof, name, [m.seconds(**p) for p in pts], [p["median_s"] for p in pts])
        if m.kind == "linear":
            model = " + ".join(f"{_ns(c)}·{f}" if f != "1" else _ns(c) for f, c in zip(m.features, m.coef))
        elif m.kind == "nearest":
            model = (f"nearest {len(m.points)} points, scaled by " +
                     " + ".join(f"{_ns(c)}·{f}" for f, c in zip(m.features, m.coef)))
        else:
            model = f"loglog over {m.features[0]}, {len(m.xs)} knots, {_ns(m.ys[0])}..{_ns(m.ys[-1])}"
        rows.append({"op": name, "kind": m.kind, "model (ns)": model, "err_med_%": med, "err_max_%": mx,
                     "loo_med_%": loo[name][0], "loo_max_%": loo[name][1], "points": len(pts)})
    return rows


def link_rows(prof) -> list[dict]:
    rows = []
    for name, lk in prof.links.items():
        pts = [p for p in lk.points if isinstance(p, dict) and "median_s" in p]
        med, mx = _errors(prof, name, [lk.seconds(p["nbytes"]) for p in pts], [p["median_s"] for p in pts])
        rows.append({"link": name, "latency_us": f"{lk.latency_s * 1e6:.1f}", "GB/s": f"{lk.bw_Bps / 1e9:.3g}",
                     "err_med_%": med, "err_max_%": mx, "points": len(pts)})
        for pair, (lat, bw) in sorted(lk.pairs.items()):
            med, mx = _errors(prof, f"{name} {pair}", [], [])
            rows.append({"link": f"  {name} {pair}", "latency_us": f"{lat * 1e6:.1f}", "GB/s": f"{bw / 1e9:.3g}",
                         "err_med_%": med, "err_max_%": mx, "points": ""})
    return rows


def loo_rows(prof) -> dict[str, tuple[str, str]]:
    """Per op, its leave-one-size-out (median, max) error in % over its stored points: each
    point predicted by the op's kind of model refit without it ("-": fewer than three sizes)."""
    import math

    from adaqp.costmodel.fit import leave_one_out_errors

    out = {}
    for name, m in prof.ops.items():
        med, mx = leave_one_out_errors(name, m.points, m) if m.points else (math.nan, math.nan)
        out[name] = ("-", "-") if not math.isfinite(med) else (f"{med:.1f}", f"{mx:.1f}")
    return out


def print_profile(prof) -> None:
    from adaqp.cli.report import format_table

    m = prof.meta
    about = [str(m["device_name"]) if "device_name" in m else "",
             f"{m['cores']} cores" if "cores" in m else "",
             f"{m['nprocs']} ranks x {m.get('compute_threads', '?')} thread(s)" if "nprocs" in m else "",
             f"{m['grid']} grid" if "grid" in m else "", str(m.get("date", ""))]
    print(f"profile {prof.name!r} ({prof.kind}, {prof.device}): {', '.join(a for a in about if a)}")
    print("\nCompute ops (seconds = sum of coefficient x feature; coefficients in ns). err: the fit's error as "
          "recorded; loo: leave-one-size-out, each stored point predicted by the model refit without it:")
    print(format_table(op_rows(prof)))
    for_ = m.get("measured_for") if isinstance(m.get("measured_for"), list) else []
    for e in for_:
        if isinstance(e, dict):
            n = sum(v for v in e.get("sizes", {}).values() if isinstance(v, int))
            print(f"measured for {e.get('workload', '?')}: {n} sizes, {e.get('date', '')}")
    print("\nLinks (seconds = latency + nbytes / bandwidth):")
    print(format_table(link_rows(prof)))
    i = m.get("interference") if isinstance(m.get("interference"), dict) else {}
    spread = f" (p10 {i['p10']:.2f}, p90 {i['p90']:.2f}" if "p10" in i else ""
    spread += ", clamped from {:.2f}".format(i["raw_median"]) if i.get("clamped") else ""
    if prof.sync_s:
        print("\nSync floor per exchange / all-reduce, by ranks sharing the host"
              f"{' (GPU, host-staged)' if prof.device == 'cuda' else ''}: " +
              ", ".join(f"{k}: {v * 1e6:.0f} / {prof.allreduce_sync_s.get(k, 0.0) * 1e6:.0f} us"
                        for k, v in sorted(prof.sync_s.items(), key=lambda kv: int(kv[0]))))
    print(f"\nInterference: compute runs {prof.interference:.2f}x slower while communication runs"
          f"{spread + ')' if spread else ''}")
    if isinstance(i.get("corun_factor"), (int, float)):
        print(f"Co-running: a SpMM runs {i['corun_factor']:.2f}x slower with every rank computing than alone "
              "(the ops above were timed alone)")
    if prof.corun_by_ranks:
        print("Co-running by ranks computing at once (compute slows by this while that many ranks of the host "
              "compute; the simulator applies it instant by instant): " +
              ", ".join(f"{k}: {v:.2f}x" for k, v in sorted(prof.corun_by_ranks.items(), key=lambda kv: int(kv[0]))))


def _update(args) -> int:
    from adaqp.cli.report import stage
    from adaqp.runtime.profiling.remeasure import remeasure

    prof = _load(args.update)
    print(f"· re-measuring {', '.join(args.ops)} of {prof.name} at its stored sizes ...", file=sys.stderr, flush=True)
    new = remeasure(prof, list(args.ops), args.why)
    with stage(f"writing {args.out}"):
        new.save(args.out)
    print(f"wrote {args.out}")
    return 0


def _corun_for(prof, stats, parts: int, hidden: int):
    """``prof`` with ``corun_by_ranks[parts]`` measured at the workload's own step
    (``costmodel.shapes.corun_step``), the sizes and the figure it replaces recorded in the
    latest ``meta.measured_for`` entry."""
    from dataclasses import replace

    from adaqp.cli.report import stage
    from adaqp.costmodel.shapes import corun_step
    from adaqp.runtime.profiling.ranks import corun_at

    step = corun_step(stats, hidden)
    with stage(f"co-run slowdown of {parts} ranks at the workload's step ({step['rows']} rows, "
               f"{step['nnz']} non-zeros, width {hidden})"):
        factor = corun_at(parts, **step)
    k = str(parts)
    entries = list(prof.meta.get("measured_for", []))
    entries[-1] = {**entries[-1], "corun": {"ranks": parts, "step": step, "factor": factor,
                                            "before": prof.corun_by_ranks.get(k)}}
    return replace(prof.with_corun(parts, factor), meta={**prof.meta, "measured_for": entries})


def _for(args) -> int:
    """``--for``: the workload's op sizes (``costmodel.shapes.workload_shapes``), measured and
    merged into the base profile (``profiler.measure_shapes``)."""
    import os

    import torch

    from adaqp.cli.report import stage
    from adaqp.runtime.profiling.profiler import measure_shapes
    from adaqp.costmodel.program import ModelShape
    from adaqp.costmodel.shapes import count, workload_shapes
    from adaqp.costmodel.workload import PlanStats
    from adaqp.data.spec import load_dataset
    from adaqp.errors import require
    from adaqp.halo import build_halo_plan
    from adaqp.partition import partition_graph
    from adaqp.wire import check_bits

    require(args.device != "cuda" or torch.cuda.is_available(),
            "--device cuda: no CUDA device is available on this machine; use --device cpu")
    parts, model = args.parts or 2, args.model or "gcn"
    hidden, layers, bits = args.hidden or 256, args.layers or 3, args.bits or (2, 4, 8)
    require(len(bits) > 0, "--bits needs at least one width, e.g. 2,4,8")
    bits = tuple(check_bits(b) for b in bits)
    base = args.base or (str(args.out) if args.out.exists() else ("cpu-2core" if args.device == "cpu" else None))
    require(base is not None, "--device cuda --for needs --base PROFILE (a measured cuda profile)")
    prof = _load(base)
    require(prof.kind == "measured", f"--base {base} is {prof.kind}: --for adds measured points to a measured "
                                     "profile (measure one first with adaqp profile --out)")
    require(prof.device == args.device, f"--base {base} describes a {prof.device} device, not --device {args.device}")
    with stage(f"loading {args.for_dataset}"):
        graph = load_dataset(args.for_dataset)
    require(parts <= graph.num_nodes, f"--parts {parts} exceeds the graph's {graph.num_nodes} nodes")
    with stage(f"partitioning into {parts} parts and building the halo plan"):
        plan = build_halo_plan(graph, partition_graph(graph, parts, args.method or "metis", 0, "nodes"))
    widths = (graph.num_features,) + (hidden,) * (layers - 1) + (graph.num_classes,)
    shape = ModelShape(model, widths)
    shapes = workload_shapes(PlanStats.from_halo_plan(plan), shape, bits, prof)
    note = (f"{args.for_dataset} --parts {parts} --model {model} --hidden {hidden} --layers {layers} "
            f"--bits {','.join(map(str, bits))}")
    threads = prof.meta.get("compute_threads")
    mine = max(1, (os.cpu_count() or 1) // args.nprocs)
    if threads and int(threads) != mine:
        print(f"· note: {prof.name} was measured with {threads} thread(s) per rank; its new points use the same "
              f"(a rank here would get {mine})", file=sys.stderr)
    print(f"· measuring {count(shapes)} op sizes for {note} into {prof.name} ...", file=sys.stderr, flush=True)
    new = measure_shapes(prof, shapes, args.device, args.nprocs, progress=True, note=note, name=args.name)
    if args.device == "cpu" and parts >= 2:
        new = _corun_for(new, PlanStats.from_halo_plan(plan), parts, hidden)
    with stage(f"writing {args.out}"):
        new.save(args.out)
    loo = loo_rows(new)
    from adaqp.cli.report import format_table

    print(format_table([{"op": op, "sizes measured": len(v), "points": len(new.ops[op].points),
                         "kind": new.ops[op].kind, "loo_med_%": loo[op][0], "loo_max_%": loo[op][1]}
                        for op, v in shapes.items()]))
    print(f"\nwrote {args.out} ({new.name}: {count(shapes)} sizes for {note})")
    return 0
