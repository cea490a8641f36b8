"""Fault campaign: kill one rank per trial with SIGKILL, measure the exit, the leftovers, the resume.

    python -m adaqp.experiments.faults --trials 20 --out DIR

Every trial trains the same small adaptive run (``--bits adaptive``, a re-solve every 2 epochs,
a checkpoint every epoch) and kills one rank, chosen at random with its phase and epoch: while a
halo exchange is launched, before the gradient all-reduce, in the middle of a checkpoint write
(the file written, not yet renamed), or before an adaptive re-solve's broadcast
(``ADAQP_FAULT``, :mod:`adaqp.runtime.faults`). Trials alternate between loopback ranks and ranks
on emulated hosts (``--link``; when root and iproute2 are here, else all run on loopback).

Per trial (:mod:`adaqp.experiments.fault_trial`): seconds from the kill until every process of
the job has exited, whether the error names the killed rank, orphan processes and network
namespaces left, whether every rank's checkpoint at the agreed resume epoch loads, and whether
``--resume`` reaches the losses of an uninterrupted run of the same configuration bit for bit
(every epoch and rank after the resume epoch). Writes ``faults.csv`` (one row per trial) and
``summary.json`` (``trials``, ``max_exit_s``, ``orphans``, ``netns_left``, ``checkpoint_loads``,
``resumed_equal``, ...). Exit 0 when the target holds (every exit within ``--max-exit-s``, no
orphans or namespaces left, every trial resumed equal), 1 otherwise, 2 for bad flags.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

from adaqp.cli.common import OneLineParser, positive_int
from adaqp.errors import AdaqpInputError, require

REPLAN_EVERY = 2


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m adaqp.experiments.faults", description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=positive_int, default=20)
    p.add_argument("--out", type=Path, required=True, help="folder for summary.json, faults.csv and runs")
    p.add_argument("--dataset", default="cora")
    p.add_argument("--nprocs", type=positive_int, default=3, help="ranks per job (default 3)")
    p.add_argument("--epochs", type=positive_int, default=8, help="epochs per job (>= 4; default 8)")
    p.add_argument("--hidden", type=positive_int, default=16)
    p.add_argument("--link", default="1gbit", help="NIC rate of the emulated hosts (default 1gbit)")
    p.add_argument("--modes", choices=("auto", "local", "link"), default="auto",
                   help="auto: alternate loopback and emulated hosts where they can be built")
    p.add_argument("--seed", type=int, default=0, help="seed of the fault choices and of training")
    p.add_argument("--max-exit-s", type=float, default=60.0, help="target: seconds from kill to exit")
    p.add_argument("--job-timeout", type=float, default=300.0, help="seconds one training job may take")
    return p


def _progress(msg: str) -> None:
    print(f"faults: {msg}", file=sys.stderr, flush=True)


def train_argv(args, mode: str, plan_dir: Path) -> list[str]:
    """The configuration every job of ``mode`` runs (faulted, resumed and reference alike)."""
    argv = [args.dataset, "--nprocs", str(args.nprocs), "--schedule", "adaqp", "--bits", "adaptive",
            "--replan-every", str(REPLAN_EVERY), "--epochs", str(args.epochs), "--hidden", str(args.hidden),
            "--layers", "2", "--seed", str(args.seed), "--eval-every", str(args.epochs),
            "--checkpoint-every", "1", "--plan-dir", str(plan_dir), "--timeout", "30"]
    return argv + (["--link", args.link] if mode == "link" else [])


def fault_points(epochs: int) -> dict[str, list[int]]:
    """Epochs at which each phase happens, leaving out epoch 0 (no checkpoint to resume from yet)."""
    every = list(range(1, epochs))
    solves = [e for e in every if (e + 1) % REPLAN_EVERY == 0 and e + 1 < epochs]
    return {"exchange": every, "allreduce": every, "checkpoint": every, "resolve": solves}


def choose_faults(n: int, world: int, epochs: int, seed: int) -> list[tuple[int, str, int]]:
    """``n`` (rank, phase, epoch): phases in turn from a random one (each as often as the others, to
    within one), in a random order; rank and epoch at random."""
    from adaqp.runtime.faults import PHASES

    rng, points = random.Random(seed), fault_points(epochs)
    first = rng.randrange(len(PHASES))
    phases = [PHASES[(first + i) % len(PHASES)] for i in range(n)]
    rng.shuffle(phases)
    return [(rng.randrange(world), ph, rng.choice(points[ph])) for ph in phases]


def _modes(args) -> list[str]:
    if args.modes != "auto":
        return [args.modes]
    from adaqp.runtime.emulate import check_available

    try:
        check_available()
    except AdaqpInputError as e:
        _progress(f"emulated hosts unavailable ({e}); every trial runs on loopback")
        return ["local"]
    return ["local", "link"]


def _machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
               platform.processor() or "?")
    return f"{platform.node()}: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def run(args) -> dict:
    from adaqp.cluster import parse_bandwidth_Bps
    from adaqp.experiments.fault_trial import read_losses, run_job, trial
    from adaqp.io import write_csv, write_summary

    require(args.epochs >= 4, f"--epochs must be >= 4 (a re-solve and checkpoints on either side), got {args.epochs}")
    require(args.max_exit_s > 0 and args.job_timeout > 0, "--max-exit-s and --job-timeout must be positive")
    parse_bandwidth_Bps(args.link, "--link")
    require(not args.out.exists() or args.out.is_dir(), f"--out {args.out} exists and is not a folder")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").unlink(missing_ok=True)  # written last: its presence means the campaign ended
    t_start, modes = time.monotonic(), _modes(args)
    plan = out / "plan"
    _progress(f"partitioning {args.dataset} into {args.nprocs} parts once, for every job")
    subprocess.run([sys.executable, "-m", "adaqp", "partition", args.dataset, "--parts", str(args.nprocs),
                    "--seed", str(args.seed), "--out", str(plan)], check=True, capture_output=True)
    refs = {}
    for mode in modes:
        _progress(f"uninterrupted reference run ({mode})")
        job = run_job([sys.executable, "-m", "adaqp", "train", *train_argv(args, mode, plan), "--out",
                       str(out / f"reference-{mode}")], out / f"reference-{mode}.log",
                      {k: v for k, v in os.environ.items() if k != "ADAQP_FAULT"}, args.job_timeout)
        if job["rc"] != 0:
            raise RuntimeError(f"the reference run ({mode}) failed; see {out}/reference-{mode}.log")
        refs[mode] = read_losses(out / f"reference-{mode}")
    rows = []
    for i, fault in enumerate(choose_faults(args.trials, args.nprocs, args.epochs, args.seed)):
        mode = modes[i % len(modes)]
        row = {"trial": i, "mode": mode, **trial(train_argv(args, mode, plan), out / f"trial{i:02d}", fault,
                                                  args.nprocs, refs[mode], args.job_timeout)}
        rows.append(row)
        ex = f"{row['exit_s']:.2f} s" if row["exit_s"] is not None else "no exit measured"
        _progress(f"[{i + 1}/{args.trials}] {mode} rank {fault[0]} {fault[1]}@{fault[2]}: exit {ex}, "
                  f"named {row['named']}, orphans {row['orphans']}, netns {row['netns_left']}, resumed from "
                  f"{row['resume_epoch']}, equal {row['resumed_equal']}{' (' + row['note'] + ')' if row['note'] else ''}")
    exits = [r["exit_s"] for r in rows]
    measured = [e for e in exits if e is not None]
    summary = {
        "trials": len(rows), "max_exit_s": max(measured) if len(measured) == len(rows) else None,
        "median_exit_s": sorted(measured)[len(measured) // 2] if measured else None,
        "exits_within_target": sum(e is not None and e <= args.max_exit_s for e in exits),
        "named": sum(r["named"] for r in rows), "orphans": sum(r["orphans"] for r in rows),
        "netns_left": sum(r["netns_left"] for r in rows),
        "checkpoint_loads": sum(r["checkpoint_loads"] for r in rows),
        "resumed_equal": sum(r["resumed_equal"] for r in rows),
        "by_phase": {ph: sum(r["phase"] == ph for r in rows) for ph in fault_points(args.epochs)},
        "by_mode": {m: sum(r["mode"] == m for r in rows) for m in modes},
        "max_exit_s_target": args.max_exit_s, "dataset": args.dataset, "nprocs": args.nprocs,
        "epochs": args.epochs, "replan_every": REPLAN_EVERY, "link": args.link if "link" in modes else None,
        "seed": args.seed, "wall_s": time.monotonic() - t_start,
        "date": time.strftime("%Y-%m-%d"), "machine": _machine(),
    }
    summary["target_met"] = (summary["exits_within_target"] == len(rows) == summary["named"]
                             and summary["orphans"] == 0 and summary["netns_left"] == 0
                             and summary["resumed_equal"] == len(rows))
    write_csv(out / "faults.csv", rows)
    write_summary(out, summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        s = run(args)
    except AdaqpInputError as e:
        print(f"faults: error: {e}", file=sys.stderr)
        return 2
    except (RuntimeError, subprocess.CalledProcessError) as e:
        print(f"faults: failed: {e}", file=sys.stderr)
        return 1
    _progress(f"done: {s['trials']} trials, max exit {s['max_exit_s']} s, {s['orphans']} orphans, "
              f"{s['netns_left']} namespaces left, {s['checkpoint_loads']} checkpoints load, "
              f"{s['resumed_equal']} resumed equal; wrote {args.out}/summary.json")
    return 0 if s["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
