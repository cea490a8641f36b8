"""How fast is the simulator at scale? One epoch of an ogbn-products-size graph at 64 and 256 ranks.

    python experiments/bench_simulator.py [--ranks 64,256] [--cluster NAME] [--cut 0.3] [--jitter 0.5]

Workload: GraphSAGE, 3 layers, hidden 256, schedule adaqp at 4 bits, on 2 449 029 nodes and
61 859 140 edges (ogbn-products) from ``synthetic_stats`` (balanced parts, cut edges uniform over
ordered pairs). Targets on the 2-core development machine: < 10 s at 64 ranks, < 60 s at 256,
< 4 GiB. Each run is a fresh subprocess, so its peak resident memory is its own.

Also printed, not targets: the same with irregular traffic (``--jitter``: log-normal spread of
the cut edges per pair), where every flow drains at its own time and the fluid network re-divides
bandwidth per drain — the simulator's worst case; at 256 ranks with ``merge_rel`` 1e-2 (flows
within 1 % of done drain together).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

PRODUCTS = dict(num_nodes=2_449_029, num_edges=61_859_140, features=100, classes=47)
TARGET_S = {64: 10.0, 256: 60.0}


def one(ranks: int, cluster_name: str, cut: float, jitter: float, merge_rel: float) -> dict:
    """Simulate one epoch (in this process) and report its figures."""
    from adaqp.costmodel.analytic import estimate
    from adaqp.costmodel.bundled import load_cluster
    from adaqp.costmodel.profile import load_profile
    from adaqp.costmodel.program import ModelShape
    from adaqp.simulator import simulate, synthetic_stats

    cluster = load_cluster(cluster_name).with_ranks(ranks)
    profile = load_profile(cluster.profile)
    shape = ModelShape("sage", (PRODUCTS["features"], 256, 256, PRODUCTS["classes"]))
    t0 = time.perf_counter()
    stats = synthetic_stats(PRODUCTS["num_nodes"], PRODUCTS["num_edges"], ranks, cut, jitter=jitter)
    r = simulate(stats, shape, "adaqp", cluster, profile, 4, merge_rel=merge_rel)
    wall = time.perf_counter() - t0
    e = estimate(stats, shape, "adaqp", cluster, profile, 4)
    return {"ranks": ranks, "jitter": jitter, "merge_rel": merge_rel, "flows": r.flows,
            "rate_updates": r.rate_updates, "sim_ms": r.epoch_time_s * 1e3, "analytic_ms": e.epoch_time_s * 1e3,
            "wall_s": wall, "peak_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ranks", default="64,256")
    p.add_argument("--cluster", default="a100-8x-nvlink-2node-100gbe",
                   help="bundled cluster, resized (default: 4 A100 per node, NVLink, 100 GbE, no GDR)")
    p.add_argument("--cut", type=float, default=0.3, help="edge-cut fraction (default 0.3)")
    p.add_argument("--jitter", type=float, default=0.5, help="irregular-traffic runs' sigma; 0 skips them")
    p.add_argument("--one", nargs=4, metavar=("RANKS", "CUT", "JITTER", "MERGE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:  # the child: one run, one JSON line
        n, cut, jit, merge = args.one
        print(json.dumps(one(int(n), args.cluster, float(cut), float(jit), float(merge))))
        return 0
    ranks = [int(x) for x in args.ranks.split(",")]
    runs = [(n, 0.0, 0.0) for n in ranks]
    if args.jitter > 0:
        runs += [(n, args.jitter, 0.0 if n <= 64 else 1e-2) for n in ranks]
    print(f"ogbn-products size, sage 3x256, adaqp 4 bits, cluster {args.cluster}, edge cut {args.cut}\n")
    print(f"{'ranks':>5} {'jitter':>6} {'merge':>6} {'flows':>8} {'updates':>7} {'sim ms':>9} "
          f"{'analytic':>9} {'wall s':>7} {'peak MiB':>8}  target")
    ok = True
    for n, jit, merge in runs:
        cmd = [sys.executable, __file__, "--cluster", args.cluster,
               "--one", str(n), str(args.cut), str(jit), str(merge)]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        target = TARGET_S.get(n) if jit == 0 else None
        verdict = "" if target is None else ("ok" if r["wall_s"] < target and r["peak_MiB"] < 4096 else "MISSED")
        ok &= verdict != "MISSED"
        print(f"{n:5d} {jit:6.2f} {merge:6.0e} {r['flows']:8d} {r['rate_updates']:7d} {r['sim_ms']:9.3f} "
              f"{r['analytic_ms']:9.3f} {r['wall_s']:7.2f} {r['peak_MiB']:8.0f}  "
              + (f"< {target:.0f} s, < 4 GiB: {verdict}" if target else "(worst case, no target)"), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
