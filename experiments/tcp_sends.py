"""When a Gloo send is done, and how unevenly flows share a shaped link.

Two facts about the runtime's exchange over TCP that the simulator's network does not play
(:mod:`adaqp.simulator.fluid` shares a link max-min fairly, and a simulated send is done when
its message has arrived, as with NCCL's rendezvous):

1. ``one``: two emulated hosts; rank 0 sends one message of N bytes to rank 1 (``isend`` /
   ``irecv`` on the runtime's direction groups, after a barrier). Printed: the seconds until the
   sender's ``wait`` returned and until the receiver's did. Over TCP a send is done once the
   kernel holds the rest of it (socket buffer, the shaper's queue), long before it arrives.
2. ``all``: P emulated hosts, every host sends N bytes to every other at once, as the runtime's
   exchange posts them; each request waited for on its own thread. Printed per repetition and
   rank: when each receive completed, and when the rank was out (its last receive). Under a
   max-min fair fluid every flow of a symmetric all-to-all ends at the same instant.

    python3 -m adaqp.experiments.tcp_sends [--link 100mbit] [--ranks 4] [--nbytes 1000000] [--reps 4]

Needs root (emulated hosts).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time


def _post(nbytes: int, sends: list[int], recvs: list[int]) -> dict[str, float]:
    """Post the sends and receives (as ``runtime.transport.duplex_all_to_all`` does) and wait
    for each on its own thread; seconds from the post until each completed (``s<peer>``, ``r<peer>``)."""
    import torch
    import torch.distributed as dist

    from adaqp.runtime.transport import direction_groups

    up, down = direction_groups()
    me = dist.get_rank()
    reqs = {}
    t0 = time.perf_counter()
    for to in sends:
        reqs[f"s{to}"] = dist.isend(torch.zeros(nbytes, dtype=torch.uint8), to, group=up if me < to else down)
    for frm in recvs:
        reqs[f"r{frm}"] = dist.irecv(torch.empty(nbytes, dtype=torch.uint8), frm, group=up if frm < me else down)
    done: dict[str, float] = {}

    def wait(key, work):
        work.wait()
        done[key] = time.perf_counter() - t0

    threads = [threading.Thread(target=wait, args=kv) for kv in reqs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done


def worker(rank: int, world: int, cfg: dict) -> list[dict[str, float]]:
    import torch.distributed as dist

    out = []
    for _ in range(cfg["reps"] + 1):  # the first sets up the connections: dropped
        dist.barrier()
        if cfg["mode"] == "one":
            out.append(_post(cfg["nbytes"], [1] if rank == 0 else [], [0] if rank == 1 else []))
        else:
            peers = [(rank + k) % world for k in range(1, world)]
            out.append(_post(cfg["nbytes"], peers, [(rank - k) % world for k in range(1, world)]))
    return out[1:]


def measure(mode: str, ranks: int, link: str, nbytes: int, reps: int) -> list[list[dict[str, float]]]:
    """Per rank, per repetition, seconds until each request completed."""
    from adaqp.cluster import parse_bandwidth_Bps
    from adaqp.runtime.emulate import EmulatedNetwork
    from adaqp.runtime.launch import spawn

    with EmulatedNetwork(ranks, parse_bandwidth_Bps(link, "--link") * 8) as net:
        return spawn("adaqp.experiments.tcp_sends:worker", ranks, ({"mode": mode, "nbytes": nbytes, "reps": reps},),
                     netns=net.namespaces, master_addr=net.addresses[0], timeout_s=300.0)


def lines_one(res: list[list[dict[str, float]]]) -> list[str]:
    send = statistics.median(r["s1"] for r in res[0])
    recv = statistics.median(r["r0"] for r in res[1])
    return [f"send done {send * 1e3:.2f} ms, receive done {recv * 1e3:.2f} ms (medians)"]


def lines_all(res: list[list[dict[str, float]]]) -> list[str]:
    out = []
    for rep in range(len(res[0])):
        outs = [max(v for k, v in res[r][rep].items() if k.startswith("r")) for r in range(len(res))]
        out.append(f"rep {rep + 1}: ranks out at " + ", ".join(f"{t * 1e3:.0f}" for t in outs)
                   + f" ms (spread {(max(outs) - min(outs)) * 1e3:.0f} ms)")
        for r, d in enumerate(res):
            recv = sorted((k, v) for k, v in d[rep].items() if k.startswith("r"))
            out.append(f"  rank {r} received " + ", ".join(f"from {k[1:]} at {v * 1e3:.0f}" for k, v in recv)
                       + "; sends done by " + f"{max(v for k, v in d[rep].items() if k.startswith('s')) * 1e3:.1f} ms")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m adaqp.experiments.tcp_sends", description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("one", "all"))
    ap.add_argument("--link", default="100mbit")
    ap.add_argument("--ranks", type=int, default=4, help="all: emulated hosts (one: always 2)")
    ap.add_argument("--nbytes", type=int, default=1_000_000, help="per message")
    ap.add_argument("--reps", type=int, default=4)
    a = ap.parse_args(argv)
    if a.ranks < 2 or a.nbytes < 1 or a.reps < 1:
        ap.error("need --ranks >= 2, --nbytes >= 1 and --reps >= 1")
    from adaqp.errors import AdaqpInputError

    try:
        from adaqp.runtime.emulate import check_available

        check_available()
        res = measure(a.mode, 2 if a.mode == "one" else a.ranks, a.link, a.nbytes, a.reps)
    except AdaqpInputError as e:  # a bad --link, no root: one line, not a traceback
        print(f"tcp_sends: {e}", file=sys.stderr)
        return 2
    print("\n".join(lines_one(res) if a.mode == "one" else lines_all(res)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
