"""Does a peer's lateness add to a large exchange, or hide under it? (a core per rank)

    python3 -m adaqp.experiments.late_peer [--link 1gbit] [--kbytes 0.064 1000] [--spmms 8] [--ranks 2]

CPU ranks of one thread each (two by default) on emulated hosts behind shaped links (needs
root). Each step, all run the same SpMMs (``--spmms`` of a 6,000-row graph with 60,000 edges,
width 64: a few milliseconds, as between two exchanges of a training step), then swap
``kbytes`` with every peer; ``aligned`` adds a barrier between the compute and the exchange,
``free`` does not, as training does not. Printed, per size, the median over the steps of the
exchange's seconds (MAX over the ranks, from each rank's own post).

``free - aligned`` of the tiny exchange is what the ranks' lateness costs. If a large exchange's
``free - aligned`` is about the same, lateness and transfer add up (a late peer's bytes start
moving only when it posts): the simulator's rule with a core per rank
(``costmodel.network.sync_is_floor``). If it is about zero, a longer transfer hides it.
docs/contention.md gives the figures measured on the 2-core machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def worker(rank: int, world: int, cfg: dict) -> dict:
    import torch
    import torch.distributed as dist

    from adaqp.runtime.aggregate import csr_tensor, spmm
    from adaqp.runtime.profiling.ranks import random_csr
    from adaqp.runtime.transport import duplex_all_to_all

    a = csr_tensor(*random_csr(6_000, 60_000, seed=0), (6_000, 6_000), "cpu")
    x = torch.ones(6_000, 64)
    out = {}
    for nbytes in cfg["sizes"]:
        splits = [0 if p == rank else nbytes for p in range(world)]
        send = torch.zeros(nbytes * (world - 1), dtype=torch.uint8)
        recv = torch.empty_like(send)
        for mode in ("aligned", "free"):
            ts = []
            for step in range(cfg["steps"] + 2):  # the first two warm up
                dist.barrier()
                for _ in range(cfg["spmms"]):
                    spmm(a, x)
                if mode == "aligned":
                    dist.barrier()
                t0 = time.perf_counter()
                duplex_all_to_all(recv, send, splits, splits).wait()
                if step >= 2:
                    ts.append(time.perf_counter() - t0)
            t = torch.tensor(ts, dtype=torch.float64)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            out[f"{mode}:{nbytes}"] = float(np.median(t.numpy()))
    return out


def main(argv=None) -> None:
    from adaqp.cluster import parse_bandwidth_Bps
    from adaqp.runtime.emulate import EmulatedNetwork
    from adaqp.runtime.launch import spawn

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--link", default="1gbit", help="shaped link rate (default: 1gbit)")
    ap.add_argument("--kbytes", type=float, nargs="+", default=[0.064, 1000.0], help="kB to the peer")
    ap.add_argument("--spmms", type=int, default=8, help="SpMMs of compute before each exchange")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--ranks", type=int, default=2, help="emulated hosts, one rank each (default: 2)")
    args = ap.parse_args(argv)
    sizes = [max(1, int(k * 1e3)) for k in args.kbytes]
    rate_bps = parse_bandwidth_Bps(args.link, "--link") * 8
    cfg = {"sizes": sizes, "spmms": args.spmms, "steps": args.steps}
    with EmulatedNetwork(args.ranks, rate_bps) as net:
        got = spawn(worker, args.ranks, (cfg,), netns=net.namespaces, master_addr=net.addresses[0],
                    env={"OMP_NUM_THREADS": "1"}, timeout_s=600.0)[0]
    print(f"{args.ranks} ranks behind {args.link}, {args.spmms} SpMMs before each exchange; medians (ms)")
    print("kB per peer   aligned      free   free - aligned")
    for nb in sizes:
        a, f = got[f"aligned:{nb}"] * 1e3, got[f"free:{nb}"] * 1e3
        print(f"{nb / 1e3:11.3f} {a:9.2f} {f:9.2f} {f - a:16.2f}")


if __name__ == "__main__":
    main()
