"""Who pays the host delay of an exchange: the ranks that waited, or the one that posted last.

    python3 -m adaqp.experiments.host_delay [--ranks 2 3 4] [--rows 5000 20000] [--heavy 1.0 2.0]

k CPU ranks on this host, each with cores // k threads (as the launcher gives them), run a loop
of a SpMM (rank 0's ``heavy`` times the others' rows) and a 64-byte exchange. Every rank stamps
when it posts and when the exchange returns (CLOCK_MONOTONIC, one clock for every process of a
host); per step, the last post is the latest of the ranks' posts. Printed, medians over the
steps: how long after the last post the ranks that were waiting got out, and the last poster;
and a SpMM's seconds inside that loop against a loop of SpMMs alone (how much slower compute
runs right after an exchange). docs/contention.md says what the simulator takes from it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def worker(rank: int, world: int, cfg: dict) -> dict:
    import torch
    import torch.distributed as dist

    from adaqp.runtime.aggregate import csr_tensor, spmm
    from adaqp.runtime.profiling.ranks import random_csr
    from adaqp.runtime.transport import duplex_all_to_all

    rows = int(cfg["rows"] * (cfg["heavy"] if rank == 0 else 1.0))
    a = csr_tensor(*random_csr(rows, rows * 10, seed=rank), (rows, rows), "cpu")
    x = torch.randn(rows, 32)
    splits = [0 if p == rank else 64 for p in range(world)]
    send = torch.zeros(64 * (world - 1), dtype=torch.uint8)
    recv = torch.empty_like(send)
    stamps, bare = [], []
    for _ in range(cfg["blocks"]):
        dist.barrier()
        for _ in range(10):
            t0 = _now()
            spmm(a, x)
            bare.append(_now() - t0)
        dist.barrier()
        for _ in range(10):
            t0 = _now()
            spmm(a, x)
            t1 = _now()
            duplex_all_to_all(recv, send, splits, splits).wait()
            stamps.append((t1 - t0, t1, _now()))
    return {"stamps": stamps, "bare_s": float(np.median(bare))}


def summarise(got: list[dict]) -> dict:
    """Medians over steps (ms): out after the last post for waiting ranks and the last poster;
    SpMM in the loop with the exchange and alone."""
    e = np.array([g["stamps"] for g in got])  # rank, step, (spmm, post, out)
    last = e[:, :, 1].max(0)
    is_last = e[:, :, 1] == last
    after = (e[:, :, 2] - last) * 1e3
    waited = after[~is_last]
    return {"waiting_ms": float(np.median(waited)) if waited.size else float("nan"),
            "last_poster_ms": float(np.median(after[is_last])),
            "spmm_alone_ms": float(np.median([g["bare_s"] for g in got])) * 1e3,
            "spmm_after_exchange_ms": float(np.median(e[:, :, 0])) * 1e3}


def main(argv=None) -> None:
    import os

    from adaqp.runtime.launch import spawn

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ranks", type=int, nargs="+", default=[2, 3, 4])
    ap.add_argument("--rows", type=int, nargs="+", default=[5_000, 20_000])
    ap.add_argument("--heavy", type=float, nargs="+", default=[1.0, 2.0])
    ap.add_argument("--blocks", type=int, default=6, help="blocks of 10 steps each way")
    args = ap.parse_args(argv)
    cores = os.cpu_count() or 1
    print("ranks  rows  heavy | out after last post: waiting  last poster | SpMM alone  after exchange (ms)")
    for k in args.ranks:
        for rows in args.rows:
            for heavy in args.heavy:
                got = spawn(worker, k, ({"rows": rows, "heavy": heavy, "blocks": args.blocks},),
                            env={"OMP_NUM_THREADS": str(max(1, cores // k))}, timeout_s=300.0)
                s = summarise(got)
                print(f"{k:5d} {rows:5d} {heavy:6.1f} | {s['waiting_ms']:27.3f} {s['last_poster_ms']:12.3f} | "
                      f"{s['spmm_alone_ms']:10.2f} {s['spmm_after_exchange_ms']:15.2f}", flush=True)


if __name__ == "__main__":
    main()
