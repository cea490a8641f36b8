"""How fast one compute step runs right after the core sat idle, against back to back.

A rank in training computes in bursts between exchanges; the profile times each op in a tight
loop. On a virtual machine the two regimes need not run at the same speed, and how they differ
can change between sittings (docs/results.md). This times one SpMM + dense + ReLU step of a
random graph partition on one thread: ``reps`` times back to back (the baseline), then after
sleeping each gap, and prints the median of each over the baseline.

    python3 -m adaqp.experiments.idle_gap [--rows 6000] [--width 64] [--gaps-ms 3,10,30,100,300]
"""

from __future__ import annotations

import argparse
import statistics
import time


def make_step(rows: int, width: int, degree: int = 10, seed: int = 0):
    """A closure running one step: ``relu(spmm(A, x) @ W)`` with the profile's random CSR of
    ``degree`` non-zeros per row and the SpMM training runs; returns the step's seconds."""
    import torch

    from adaqp.runtime.aggregate import csr_tensor, spmm
    from adaqp.runtime.profiling.ranks import random_csr

    a = csr_tensor(*random_csr(rows, rows * degree, seed=seed), (rows, rows), "cpu")
    g = torch.Generator().manual_seed(seed)
    x, w = torch.randn(rows, width, generator=g), torch.randn(width, width, generator=g)

    def step() -> float:
        t = time.perf_counter()
        torch.relu_(spmm(a, x) @ w)
        return time.perf_counter() - t

    return step


def measure(rows: int, width: int, gaps_s: list[float], reps: int = 30, threads: int = 1) -> dict:
    """``{"base_ms": ..., "ratio": {gap_ms: median after the gap / base}}``."""
    import torch

    torch.set_num_threads(threads)
    step = make_step(rows, width)
    for _ in range(10):  # warm-up: allocator, caches
        step()
    base = statistics.median(step() for _ in range(reps * 4))
    ratio = {}
    for gap in gaps_s:
        ts = []
        for _ in range(reps):
            time.sleep(gap)
            ts.append(step())
        ratio[round(gap * 1e3, 3)] = statistics.median(ts) / base
    return {"base_ms": base * 1e3, "ratio": ratio}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=6000)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--gaps-ms", default="3,10,30,100,300", help="idle gaps before each timed step")
    p.add_argument("--reps", type=int, default=30, help="timed steps per gap")
    args = p.parse_args(argv)
    gaps = [float(g) / 1e3 for g in args.gaps_ms.split(",")]
    r = measure(args.rows, args.width, gaps, args.reps)
    print(f"step of {args.rows} rows x width {args.width}, one thread: {r['base_ms']:.3f} ms back to back")
    for gap_ms, x in r["ratio"].items():
        print(f"  after {gap_ms:g} ms idle: {x:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
