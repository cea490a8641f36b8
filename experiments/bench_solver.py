"""Solver benchmark: about 10,000 groups on the reference testbed model (2 x 4 V100, PCIe, 100 GbE).

Prints per solver and fixed-cost formulation (``exact``: the y pattern from the LP, then the MILP
with it fixed; ``conservative``: every rank pays every width's coding constant): groups, variables,
constraints, solve time, the proven gap of the formulation solved (the solver's own bound), the
final plan's gap against that bound and against the full LP of the exact model (the only true
lower bound of the exact problem), and greedy's gaps against the same bounds.

    python experiments/bench_solver.py [--groups 10000] [--nodes 60000] [--budget 0.4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from adaqp.costmodel.analytic import ModelShape
from adaqp.costmodel.bundled import load_cluster
from adaqp.costmodel.profile import load_profile
from adaqp.costmodel.workload import PlanStats
from adaqp.solver.groups import build_groups
from adaqp.solver.milp import solve
from adaqp.solver.model import build_model

from adaqp.data.spec import load_dataset
from adaqp.halo import build_halo_plan
from adaqp.partition import partition_graph


def _instance(nodes: int, groups: int):
    g = load_dataset(f"sbm:nodes={nodes},classes=8,feat=64,deg=10,seed=1")
    halo = build_halo_plan(g, partition_graph(g, 8, "metis", 0, "nodes"))
    stats = PlanStats.from_halo_plan(halo)
    cluster = load_cluster("reference-2x4-v100-pcie-100gbe")
    profile = load_profile(cluster.profile)
    shape = ModelShape("gcn", (64, 256, 256, 8))
    grp = build_groups(halo, shape.widths[:-1], "gcn", features=g.features, max_groups=groups)
    return build_model(grp, (2, 4, 8), stats, shape, "adaqp", cluster, profile)


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.3f} %"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", type=int, default=9000, help="target groups (channels add a few)")
    ap.add_argument("--nodes", type=int, default=60000)
    ap.add_argument("--budget", type=float, default=0.4, help="position between all-2 and all-8 epoch time")
    ap.add_argument("--time-limit", type=float, default=10.0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    model = _instance(args.nodes, args.groups)
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
              f"{_pct(z.get('formulation_gap'))}; final plan's reported gap (that bound, or the full LP when greedy is kept) {_pct(sol.gap)}; final plan vs the "
              f"full LP of the exact model (a true bound) {_pct(z.get('gap_full_lp'))}; greedy vs the same bounds "
              f"{_pct(z.get('greedy_gap'))} / {_pct(z.get('greedy_gap_full_lp'))}")
    best = min(s.variance for s in results.values())
    print(f"greedy gap to the best answer found: {_pct((results[('greedy', 'exact')].variance - best) / best)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
