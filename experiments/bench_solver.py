"""Solver benchmark: about 10,000 groups on the reference testbed model (2 x 4 V100, PCIe, 100 GbE).

Prints per solver and fixed-cost formulation (``exact``: a width pattern chosen by y-fixed LPs, then
the MILP with it fixed; ``conservative``: every rank pays every width's coding constant): groups,
variables, constraints, solve time, the proven gap of the formulation solved (the solver's own bound;
it holds for that restricted problem only), the final plan's gap against the full LP of the exact
model (a true lower bound of the whole problem), and greedy's gaps against the same bounds. The
last lines state the target: <= 0.1 % gap against a true lower bound in < 5 s.
``--tight-bound`` also solves the disaggregated LP (a tighter true bound, about 9 s, not timed).
``--bnb S`` (default 5) runs the branch and bound over the coding-intercept indicators for S seconds:
seeded with the best plan above (its line adds that plan's solve time), and beside CBC's solve from
the start, as ``adaqp plan --certify`` runs it (its line gives the wall time of both; ``--repeat N``
runs it N times and prints the median, the range and how often the target was met). ``--bnb 300``
lets them finish: about 4.4 s after the seed and 4.5 s in all beside it on the 2-core machine
(2026-11-27, two series of 12 runs: medians 4.52 and 4.37 s, 4.21-4.94 s) with the compact
relaxation; the disaggregated one (``--relaxation disaggregated``) is much slower (41 s before the
day's changes).

    python experiments/bench_solver.py [--groups 10000] [--nodes 60000 | --dataset SPEC] [--budget 0.4]
        [--tight-bound] [--bnb 5] [--repeat 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from adaqp.costmodel.analytic import ModelShape
from adaqp.costmodel.bundled import load_cluster
from adaqp.costmodel.profile import load_profile
from adaqp.costmodel.workload import PlanStats
from adaqp.solver.bnb import RELAXATIONS, branch_and_bound, solve_and_certify
from adaqp.solver.groups import build_groups
from adaqp.solver.milp import solve
from adaqp.solver.model import build_model
from adaqp.solver.patterns import disaggregated_lp_bound

from adaqp.data.spec import load_dataset
from adaqp.halo import build_halo_plan
from adaqp.partition import partition_graph


def _instance(nodes: int, groups: int, dataset: str | None = None):
    """The benchmark's SBM graph (``nodes``), or ``dataset`` (any spec ``adaqp data`` takes)."""
    g = load_dataset(dataset or f"sbm:nodes={nodes},classes=8,feat=64,deg=10,seed=1")
    halo = build_halo_plan(g, partition_graph(g, 8, "metis", 0, "nodes"))
    stats = PlanStats.from_halo_plan(halo)
    cluster = load_cluster("reference-2x4-v100-pcie-100gbe")
    profile = load_profile(cluster.profile)
    shape = ModelShape("gcn", (g.features.shape[1], 256, 256, 8))
    grp = build_groups(halo, shape.widths[:-1], "gcn", features=g.features, max_groups=groups)
    return build_model(grp, (2, 4, 8), stats, shape, "adaqp", cluster, profile)


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.3f} %"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", type=int, default=10000, help="target groups (channels add a few)")
    ap.add_argument("--nodes", type=int, default=60000)
    ap.add_argument("--dataset", default=None, help="another graph instead of the SBM (e.g. cora, rmat:scale=16)")
    ap.add_argument("--budget", type=float, default=0.4, help="position between all-2 and all-8 epoch time")
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--tight-bound", action="store_true", help="also the disaggregated LP bound (slow)")
    ap.add_argument("--bnb", type=float, default=5.0, help="seconds for the y branch and bound (0: skip)")
    ap.add_argument("--relaxation", choices=RELAXATIONS, default="compact", help="the search's node relaxation")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run the search beside CBC's solve this many times and summarise (this machine is noisy)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error(f"--repeat must be >= 1, got {args.repeat}")
    t0 = time.perf_counter()
    model = _instance(args.nodes, args.groups, args.dataset)
    G = model.groups.num_groups
    lo, hi = model.time(np.zeros(G, int)), model.time(np.full(G, 2))
    budget = lo + args.budget * (hi - lo)
    print(f"instance built in {time.perf_counter() - t0:.2f} s: {G} groups; epoch all-2 {lo * 1e3:.3f} ms, "
          f"all-8 {hi * 1e3:.3f} ms, budget {budget * 1e3:.3f} ms")
    results = {}
    runs = [("greedy", "exact")] + [(s, f) for f in ("exact", "conservative") for s in ("cbc", "highs")]
    for solver, fixed in runs:
        sol = solve(model, budget, solver=solver, time_limit=args.time_limit, fixed_costs=fixed)
        results[(solver, fixed)] = sol
        z = sol.size
        name = solver if solver == "greedy" else f"{solver}/{fixed}"
        print(f"{name:18s} groups {z['groups']}, variables {z['variables']} ({z.get('free_variables', 'all')} "
              f"free after fixing), constraints {z['constraints']}, solve {sol.solve_time_s:.2f} s, status "
              f"{sol.status}, variance {sol.variance:.6g}, time {sol.time_s * 1e3:.3f} ms "
              f"(budget met: {sol.time_s <= budget * (1 + 1e-9)})")
        print(f"{'':18s} proven gap of the {z['formulation']} formulation (solver's bound) "
              f"{_pct(z.get('formulation_gap'))}; final plan's reported gap (that bound, or the full LP when greedy is kept) "
              f"{_pct(sol.gap)}; final plan vs the "
              f"full LP of the exact model (a true bound) {_pct(z.get('gap_full_lp'))}; greedy vs the same bounds "
              f"{_pct(z.get('greedy_gap'))} / {_pct(z.get('greedy_gap_full_lp'))}")
    best = min(s.variance for s in results.values())
    print(f"greedy gap to the best answer found: {_pct((results[('greedy', 'exact')].variance - best) / best)}")
    _target(results, model, budget, args.tight_bound)
    if args.bnb > 0:
        seed = min(results.values(), key=lambda s: s.variance)
        _bnb(model, budget, args.bnb, seed.choice, seed.solve_time_s, args.relaxation, args.time_limit, args.repeat)
    return 0


def _bnb(model, budget: float, seconds: float, seed, seed_s: float, relaxation: str, time_limit: float,
         repeat: int = 1) -> None:
    """The branch and bound over y (solver/bnb.py, on ``relaxation``'s node LPs): a lower bound for
    the whole problem. Seeded with the best plan above (the target counts that plan's solve time
    too), then ``repeat`` times as ``adaqp plan --certify`` runs it, beside CBC's solve from the
    start; several runs end with their spread, as one run on this machine varies by +-5 %."""
    r = branch_and_bound(model, budget, gap=1e-3, time_limit=seconds, incumbent=seed, relaxation=relaxation)
    _bnb_line(f"bnb after the seed ({relaxation} relaxation)", model, r, seed_s + r.solve_time_s,
              f"with the seed's solve ({seed_s:.2f} s)")
    runs = []
    for _ in range(repeat):
        sol = solve_and_certify(model, lambda: solve(model, budget, solver="cbc", time_limit=time_limit), budget,
                                1e-3, seconds, relaxation)
        z = sol.size
        runs.append((sol.solve_time_s, z["certified_gap"]))
        print(f"bnb beside CBC's solve, as adaqp plan --certify: variance {sol.variance:.6g}, bound "
              f"{z['certified_lower_bound']:.6g}, certified gap {_pct(z['certified_gap'])}, {z['certify_nodes']} node "
              f"LPs, {sol.solve_time_s:.2f} s in all "
              f"({'complete' if z['certify_complete'] else 'stopped by the time limit'}): "
              f"{_met(z['certified_gap'], sol.solve_time_s)} (<= 0.100 % in < 5 s)", flush=True)
    if repeat > 1:
        t = np.array([x[0] for x in runs])
        met = sum(_met(g, s) == "met" for s, g in runs)
        print(f"bnb beside CBC's solve, {repeat} runs: {np.median(t):.2f} s median, {t.min():.2f}-{t.max():.2f} s; "
              f"target met in {met} of {repeat}")


def _met(gap: float, seconds: float) -> str:
    """The target; a search stopped at exactly 0.1 % reports it up to float rounding
    (1.0000000000000514e-3), which counts as 0.1 %."""
    return "met" if gap <= 1e-3 * (1 + 1e-9) and seconds < 5 else "NOT met"


def _bnb_line(name: str, model, r, total: float, what: str) -> None:
    print(f"{name}: {model.groups.num_groups} groups, {r.branch_vars} branching variables, "
          f"{r.nodes} node LPs, {r.leaves_milp} node MILPs, bound {r.lower_bound:.6g}, best plan "
          f"{r.variance:.6g}, certified gap {_pct(r.gap)}, {r.solve_time_s:.2f} s "
          f"({'complete' if r.complete else 'stopped by the time limit'}); {what} {total:.2f} s: "
          f"{_met(r.gap, total)} (<= 0.100 % in < 5 s)")


def _target(results: dict, model, budget: float, tight: bool) -> None:
    """The target, per exact-formulation run: a gap against a *true* lower bound."""
    bound = disaggregated_lp_bound(model, budget) if tight else None
    for solver in ("cbc", "highs"):
        sol = results[(solver, "exact")]
        gaps = [("full LP", sol.size.get("gap_full_lp"))]
        if bound is not None:
            gaps.append(("disaggregated LP", max(0.0, sol.variance - bound) / sol.variance))
        g = min(v for _, v in gaps if v is not None)
        text = ", ".join(f"{name} {_pct(v)}" for name, v in gaps)
        print(f"target {solver}/exact: {sol.size['groups']} groups, variance {sol.variance:.6g}, certified gap "
              f"({text}), solve {sol.solve_time_s:.2f} s: "
              f"{_met(g, sol.solve_time_s)} (<= 0.100 % in < 5 s)")


if __name__ == "__main__":
    raise SystemExit(main())
