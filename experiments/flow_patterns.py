"""When do flows through shaped links lose rate? Exchange patterns on emulated hosts.

    python3 -m adaqp.experiments.flow_patterns [--hosts 3 4] [--link 100mbit] [--kbytes 1250] [--reps 6]

One rank per emulated host behind a ``tc tbf`` shaped link (needs root). Each pattern is a byte
matrix (``kbytes`` per flow) swapped with the runtime's exchange, ``reps`` times after a barrier;
printed, the median seconds (MAX over the ranks) beside what the fluid model gives at the full
rate (max-min fair sharing, no crowding), and each node's flows out and in. docs/cost-model.md
("Crowded NICs") gives the figures measured on the 2-core machine and the rule the model takes
from them (``network.bw_crowded``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def patterns(hosts: int, nbytes: int) -> dict[str, np.ndarray]:
    """Named byte matrices ``[sender, receiver]`` over ``hosts`` nodes, ``nbytes`` per flow."""
    n = hosts

    def flows(*pairs) -> np.ndarray:
        m = np.zeros((n, n), dtype=np.int64)
        for s, r in pairs:
            m[s, r] = nbytes
        return m

    out = {
        "one flow 0->1": flows((0, 1)),
        "pair 0<->1": flows((0, 1), (1, 0)),
        "0 -> every other": flows(*((0, r) for r in range(1, n))),
        "every other -> 0": flows(*((s, 0) for s in range(1, n))),
        "0->1, 2->1, 1->0": flows((0, 1), (2, 1), (1, 0)),
        "chain 0<->1<->2": flows((0, 1), (1, 0), (1, 2), (2, 1)),
        "star 0<->1, 0<->2": flows((0, 1), (1, 0), (0, 2), (2, 0)),
        "ring": flows(*((s, (s + 1) % n) for s in range(n))),
    }
    every = np.full((n, n), nbytes, dtype=np.int64)
    np.fill_diagonal(every, 0)
    out["all-to-all"] = every
    return out


def fluid_s(matrix: np.ndarray, bw_Bps: float) -> float:
    """Seconds the fluid model gives the pattern at ``bw_Bps`` per NIC side, no crowding."""
    import simpy

    from adaqp.simulator.fluid import FluidNetwork

    n = matrix.shape[0]
    s, r = np.nonzero(matrix)
    env = simpy.Environment()
    done = []
    net = FluidNetwork(env, np.full(2 * n, bw_Bps), lambda ids, _b: done.append(env.now))
    net.add(np.arange(s.size), np.stack([s, n + r], axis=1), matrix[s, r].astype(float))
    env.run()
    return max(done)


def worker(rank: int, world: int, cfg: dict) -> dict[str, float]:
    import torch
    import torch.distributed as dist

    from adaqp.runtime.transport import duplex_all_to_all

    out = {}
    for name, m in cfg["patterns"].items():
        m = np.asarray(m, dtype=np.int64)
        send_splits = [int(m[rank, p]) if p != rank else 0 for p in range(world)]
        recv_splits = [int(m[p, rank]) if p != rank else 0 for p in range(world)]
        send = torch.zeros(max(1, sum(send_splits)), dtype=torch.uint8)
        recv = torch.empty(max(1, sum(recv_splits)), dtype=torch.uint8)
        ts = []
        for i in range(cfg["reps"] + 1):  # the first warms up
            dist.barrier()
            t0 = time.perf_counter()
            duplex_all_to_all(recv, send, recv_splits, send_splits).wait()
            if i:
                ts.append(time.perf_counter() - t0)
        t = torch.tensor(ts, dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        out[name] = float(np.median(t.numpy()))
    return out


def main(argv=None) -> None:
    from adaqp.cluster import parse_bandwidth_Bps
    from adaqp.runtime.emulate import EmulatedNetwork
    from adaqp.runtime.launch import spawn

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, nargs="+", default=[3, 4], help="emulated hosts (>= 3)")
    ap.add_argument("--link", default="100mbit", help="shaped link rate (default: 100mbit)")
    ap.add_argument("--kbytes", type=float, default=1250.0, help="kB per flow (default: 1250)")
    ap.add_argument("--reps", type=int, default=6)
    args = ap.parse_args(argv)
    few = [h for h in args.hosts if h < 3]
    if few:
        ap.error(f"--hosts: every count must be >= 3 (the patterns use nodes 0, 1 and 2), got {few}")
    rate_Bps = parse_bandwidth_Bps(args.link, "--link")
    nbytes = max(1, int(args.kbytes * 1e3))
    for hosts in args.hosts:
        pats = patterns(hosts, nbytes)
        cfg = {"patterns": {k: v.tolist() for k, v in pats.items()}, "reps": args.reps}
        with EmulatedNetwork(hosts, rate_Bps * 8) as net:
            got = spawn(worker, hosts, (cfg,), netns=net.namespaces, master_addr=net.addresses[0],
                        timeout_s=600.0)[0]
        one = got["one flow 0->1"]
        print(f"{hosts} hosts behind {args.link}, {nbytes / 1e3:g} kB per flow; medians (ms); "
              f"fluid: the model at the one-flow rate ({nbytes / one / 1e6:.2f} MB/s), no crowding")
        print(f"{'pattern':22s} {'measured':>9s} {'fluid':>7s}  flows out/in per node")
        for name, m in pats.items():
            counts = " ".join(f"{int(o)}/{int(i)}" for o, i in zip((m > 0).sum(1), (m > 0).sum(0)))
            print(f"{name:22s} {got[name] * 1e3:9.1f} {fluid_s(m, nbytes / one) * 1e3:7.1f}  {counts}")


if __name__ == "__main__":
    main()
