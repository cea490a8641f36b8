"""``adaqp plan DATASET --parts N --cluster SPEC --time-budget 1.2s|0.4x``: solve a BitPlan."""

from __future__ import annotations

import contextlib
import math
import sys

from adaqp.cli.common import add_out, positive_int
from adaqp.cli.scenario import add_scenario_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "plan", help="solve per-row bit-widths (a BitPlan) for a time budget",
        description="Partition the graph, group every channel's rows by variance weight and solve "
                    "the bit-width MILP against the analytic cost model. Budgets: '1.2s' / '800ms' "
                    "bound the predicted epoch time; '0.4x' bounds the exchange part (exchanges + "
                    "coding) as a fraction of the fp32 exchange time. Writes bitplan.json/.npz and "
                    "summary.json (predicted_epoch_time_s, variance, solve_time_s, gap, bits_histogram; "
                    "extrapolated: op sizes outside the profile's measured range, also warned on stderr).")
    add_scenario_args(p, bits_default=None)
    p.add_argument("--time-budget", default=None, help="e.g. 1.2s, 800ms or 0.4x (lambda mode: optional)")
    p.add_argument("--bits-set", default="2,4,8", help="widths to choose from (default: 2,4,8)")
    p.add_argument("--mode", choices=("min-variance", "lambda", "frontier"), default="min-variance")
    p.add_argument("--lambda", dest="lam", type=float, default=0.5, help="lambda mode weight (default 0.5)")
    p.add_argument("--solver", choices=("cbc", "highs", "greedy"), default="cbc")
    p.add_argument("--time-limit", type=float, default=30.0, help="solver time limit in seconds (default 30)")
    p.add_argument("--certify", type=float, default=0.0, metavar="SECONDS",
                   help="also branch and bound (beside the solve, from its start) for up to SECONDS to "
                        "prove a lower bound for the whole problem: summary gains certified_gap "
                        "(default 0: off)")
    p.add_argument("--max-groups", type=positive_int, default=4000, help="target number of groups (default 4000)")
    p.add_argument("--points", type=positive_int, default=8, help="frontier: number of budgets (default 8)")
    add_out(p)
    p.set_defaults(run=run)


def _bits_set(text: str) -> tuple[int, ...]:
    from adaqp.errors import require
    from adaqp.wire import check_bits

    try:
        widths = tuple(sorted({check_bits(int(b)) for b in text.split(",") if b.strip()}))
    except ValueError:
        widths = ()
    require(bool(widths), f"--bits-set {text!r}: expected comma-separated widths such as 2,4,8")
    return widths


def _histogram(plan) -> dict:
    return {f"{l}/{d}": {str(b): n for b, n in h.items()} for (l, d), h in plan.histogram().items()}


def _load(args):
    from adaqp.cli.scenario import load_scenario

    sc = load_scenario(args)
    return sc.plan, sc.stats, sc.shape, sc.cluster, sc.profile, sc.graph


@contextlib.contextmanager
def _certify_bar(seconds: float):
    """A progress bar on stderr (a terminal only) for --certify's search: seconds used of its
    limit, node LPs, and the certified gap so far; yields its callback (None without --certify)."""
    if seconds <= 0:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(total=round(seconds, 1), unit="s", file=sys.stderr, dynamic_ncols=True, leave=False, disable=None,
               desc="certify", bar_format="{desc}: {n:.1f}/{total} s |{bar}|{postfix}")

    def tick(elapsed_s, nodes, lower, best):
        gap = (best - lower) / best if math.isfinite(best) and best > 0 else math.inf
        bar.set_postfix_str(f"{nodes} node LPs, gap {100 * gap:.3f} %" if math.isfinite(gap) else f"{nodes} node LPs",
                            refresh=False)
        bar.update(min(elapsed_s, bar.total) - bar.n)

    try:
        yield tick
    finally:
        bar.close()


def run(args) -> int:
    from adaqp.cli.common import prepare_out
    from adaqp.cli.report import format_table, stage, write_summary
    from adaqp.costmodel.analytic import estimate
    from adaqp.costmodel.coverage import watch
    from adaqp.errors import require
    from adaqp.solver.plan import solve_bitplan

    out = prepare_out(args.out)
    require(args.time_budget is not None or args.mode == "lambda", f"--mode {args.mode} needs --time-budget")
    require(args.certify >= 0, f"--certify must be >= 0 seconds, got {args.certify}")
    ctx = _load(args)
    if args.mode == "frontier":
        return _write_frontier(args, ctx, out)
    halo, stats, shape, cluster, profile, graph = ctx
    with stage(f"solving bit-widths ({args.mode}, {args.solver})"), _certify_bar(args.certify) as tick:
        res = solve_bitplan(halo, stats, shape, cluster, profile, args.time_budget, _bits_set(args.bits_set),
                            args.schedule, "lambda" if args.mode == "lambda" else "min-variance", args.solver,
                            args.time_limit, lam=args.lam, features=graph.features, max_groups=args.max_groups,
                            certify_s=args.certify, on_batch=tick)
    sol, plan = res.solution, res.bitplan
    with watch(profile) as extrapolated:  # the predicted epoch's ops, not the solver's per-group evaluations
        e = estimate(stats, shape, args.schedule, cluster, profile, plan)
    rows = _histogram_rows(plan.histogram())
    print(format_table(rows) if rows else "(nothing exchanged: one part or an empty halo)")
    print(f"\n{res.num_groups} groups, {sol.size.get('variables', 0)} variables, "
          f"{sol.size.get('constraints', 0)} constraints; {sol.solver} {sol.status} in {sol.solve_time_s:.2f} s, "
          f"gap {_pct(sol.gap)}{_gap_note(sol.size, sol.gap)} (greedy variance {sol.greedy_variance:.6g})")
    if "certified_gap" in sol.size:
        z = sol.size
        print(f"certified: no plan within the budget has variance below {z['certified_lower_bound']:.6g} "
              f"(gap {_pct(z['certified_gap'])}, {z['certify_nodes']} node LPs in {z['certify_time_s']:.1f} s, "
              f"{'search complete' if z['certify_complete'] else 'stopped by --certify'})")
    print(f"variance {sol.variance:.6g}; predicted epoch {e.epoch_time_s * 1e3:.3f} ms"
          + (f" (budget {res.budget_s * 1e3:.3f} ms, {res.scope})" if res.budget_s else ""))
    if out is not None:
        plan.save(out / "bitplan.json")
        write_summary(out, {"dataset": graph.name, "cluster": cluster.name, "parts": stats.num_parts,
                            "mode": args.mode, "solver": sol.solver, "status": sol.status,
                            "time_budget": args.time_budget, "budget_s": res.budget_s, "scope": res.scope,
                            "predicted_epoch_time_s": e.epoch_time_s, "model_time_s": sol.time_s,
                            "variance": sol.variance, "greedy_variance": sol.greedy_variance,
                            "solve_time_s": sol.solve_time_s, "gap": sol.gap, **sol.size,
                            "bits_histogram": _histogram(plan), "extrapolated": extrapolated})
        print(f"wrote {out}/: bitplan.json, bitplan.npz, summary.json")
    return 0


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.3f} %"


def _write_frontier(args, ctx, out) -> int:
    from adaqp.cli.report import format_table, write_csv
    from adaqp.solver.plan import frontier

    halo, stats, shape, cluster, profile, graph = ctx
    scope = "exchange" if (args.time_budget or "").strip().endswith("x") else "epoch"
    rows = frontier(halo, stats, shape, cluster, profile, args.points, scope, bits_set=_bits_set(args.bits_set),
                    features=graph.features, max_groups=args.max_groups, schedule=args.schedule,
                    solver=args.solver, time_limit=args.time_limit)
    print(format_table(rows))
    if out is not None:
        write_csv(out / "frontier.csv", rows)
        _plot(rows, out / "frontier.png")
        print(f"wrote {out}/: frontier.csv, frontier.png")
    return 0


def _plot(rows, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([r["time_s"] * 1e3 for r in rows], [r["variance"] for r in rows], "o-")
    ax.set_xlabel("modelled time (ms)")
    ax.set_ylabel("total quantization variance")
    ax.set_yscale("log")
    ax.set_title("variance / time frontier")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _gap_note(size: dict, gap) -> str:
    """What ``gap`` is measured against: the exact path's bound holds only for the width pattern it
    chose (on Cora at 2.6 ms that plan was 11.6 % above the optimum with "gap 0.000 %"), so the
    full LP's gap, a bound for every plan, is shown beside it."""
    full = size.get("gap_full_lp")
    kind = size.get("formulation")
    if kind not in ("exact", "conservative") or full is None or gap is None or full <= gap:
        return ""
    within = "within the chosen width pattern" if kind == "exact" else "within the conservative formulation"
    return f" {within}, {_pct(full)} against the full LP (a bound for every plan; --certify S proves a tighter one)"


def _histogram_rows(hist: dict) -> list:
    """Table rows of ``BitPlan.histogram()``: every width a column on every row (a row without
    the first row's widths printed blank)."""
    widths = sorted({b for h in hist.values() for b in h})
    return [{"layer": l, "direction": d, **{f"{b} bits": h.get(b, 0) for b in widths}} for (l, d), h in hist.items()]

