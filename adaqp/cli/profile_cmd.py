"""``adaqp profile --out FILE.json``: measure this machine into a HardwareProfile;
``adaqp profile --show FILE_OR_NAME``: print an existing profile's tables."""

from __future__ import annotations

import sys
from pathlib import Path

from adaqp.cli.common import comma_list, positive_int


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
                   help="with --update: comma list of ops to re-measure (e.g. copy,quantize_b2,dequantize_b2)")
    p.add_argument("--why", default="the code behind these ops changed",
                   help="with --update: the reason, kept in the profile's meta.remeasured")
    p.set_defaults(run=run)


def run(args) -> int:
    from adaqp.errors import require

    if args.show is not None:
        print_profile(_load(args.show))
        return 0
    require(args.out is not None, "--out FILE.json is required (or --show FILE_OR_NAME)")
    require(args.out.suffix == ".json", f"--out must name a .json file, got {args.out}")
    require(not args.out.is_dir(), f"--out {args.out} is a folder")
    require(args.nprocs >= 2, f"--nprocs must be at least 2 (links need a peer), got {args.nprocs}")
    require((args.update is None) == (args.ops is None), "--update and --ops go together")
    if args.update is not None:
        return _update(args)
    import time

    import torch

    from adaqp.cli.report import stage
    from adaqp.costmodel.profiler import measure

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
    """One row per op: its model in ns per feature unit, and its fit error over its points."""
    rows = []
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
                     "points": len(pts)})
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


def print_profile(prof) -> None:
    from adaqp.cli.report import format_table

    m = prof.meta
    about = [str(m["device_name"]) if "device_name" in m else "",
             f"{m['cores']} cores" if "cores" in m else "",
             f"{m['nprocs']} ranks x {m.get('compute_threads', '?')} thread(s)" if "nprocs" in m else "",
             f"{m['grid']} grid" if "grid" in m else "", str(m.get("date", ""))]
    print(f"profile {prof.name!r} ({prof.kind}, {prof.device}): {', '.join(a for a in about if a)}")
    print("\nCompute ops (seconds = sum of coefficient x feature; coefficients in ns):")
    print(format_table(op_rows(prof)))
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
              "(the ops above were timed alone; the cost model applies this factor when ranks share a CPU)")


def _update(args) -> int:
    from adaqp.cli.report import stage
    from adaqp.costmodel.remeasure import remeasure

    prof = _load(args.update)
    print(f"· re-measuring {', '.join(args.ops)} of {prof.name} at its stored sizes ...", file=sys.stderr, flush=True)
    new = remeasure(prof, list(args.ops), args.why)
    with stage(f"writing {args.out}"):
        new.save(args.out)
    print(f"wrote {args.out}")
    return 0
