"""Launching a training run and writing what it measured.

``run_local`` partitions once, spawns the ranks, and writes ``epochs.csv`` (per epoch and rank:
wall time and the phase breakdown), ``evals.csv``, ``trace.json`` (Chrome trace, one track per
rank and thread) and ``summary.json``.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from adaqp.runtime.config import TrainConfig
from adaqp.runtime.memory import summarize as peak_memory_summary

PHASES = ("quantize", "pack", "communicate", "wait", "dequantize", "unpack", "central", "marginal",
          "dense", "forward", "backward", "allreduce", "optimizer")


def run_local(cfg: TrainConfig, out: Path | None, master_addr: str = "127.0.0.1",
              master_port: int | None = None, link: str | None = None) -> dict:
    """Train on ``cfg.nprocs`` local ranks; with ``link`` (e.g. ``100mbit``) each rank gets its own
    emulated host with a NIC of that rate (:mod:`adaqp.runtime.emulate`; needs root), and the
    rendezvous moves to rank 0's emulated address (``master_addr`` is then ignored)."""
    if cfg.resume:  # here, not in the ranks, so that a refusal is one line before anything starts
        from adaqp.runtime.resume import require_epochs_left, resume_epoch

        require_epochs_left(resume_epoch(cfg.checkpoint_dir, cfg.nprocs), cfg.epochs, cfg.checkpoint_dir)
    with tempfile.TemporaryDirectory(prefix="adaqp-plan-") as tmp:
        plan_dir = prepared_plan_dir(cfg, Path(cfg.plan_dir) if cfg.plan_dir else (out / "plan" if out else Path(tmp)))
        results = launch("adaqp.runtime.trainer:train_rank", cfg, (cfg.to_dict(), str(plan_dir)), link,
                         master_addr, master_port)
    return summarize_and_write(cfg, results, out, link)


def prepared_plan_dir(cfg: TrainConfig, plan_dir: Path) -> Path:
    """Partition into ``plan_dir`` (or reuse what is there) and check it before any rank starts."""
    from adaqp.runtime.prepare import prepare_plan

    plan_dir.mkdir(parents=True, exist_ok=True)
    prepare_plan(cfg, plan_dir)
    check_before_launch(cfg, plan_dir)
    return plan_dir


def check_before_launch(cfg: TrainConfig, plan_dir: Path) -> None:
    """Refuse a mismatched plan here, with one clear line, rather than in N ranks mid-start."""
    from adaqp.errors import require
    from adaqp.halo import HaloPlan
    from adaqp.runtime.prepare import load_bitplan

    plan = HaloPlan.load(plan_dir)
    require(plan.num_parts == cfg.nprocs, f"the plan in {plan_dir} has {plan.num_parts} parts but "
                                          f"--nprocs is {cfg.nprocs}")
    load_bitplan(cfg, plan.pair_rows())


def summarize_and_write(cfg: TrainConfig, results: list[dict], out: Path | None,
                        link: str | None = None) -> dict:
    from adaqp.cluster import parse_bandwidth_Bps

    records = [r for res in results for r in res["records"]]
    evals = results[0]["evals"]
    summary = summarize(cfg, records, evals)
    # the configured per-direction NIC rate of an emulated run, in bits/s; None on loopback/torchrun
    summary.update(link=link, link_bps=parse_bandwidth_Bps(link, "--link") * 8 if link else None)
    # what ran, as each rank chose it (auto placement: gloo, nccl or gloo-staged)
    summary.update(device=cfg.device, transport=sorted({str(r.get("transport")) for r in results}),
                   rank_devices=[r.get("device") for r in results])
    summary["peak_memory_bytes"] = peak_memory_summary(results)  # per rank and max (runtime/memory.py)
    if out is not None:
        from adaqp.io import write_csv, write_summary
        from adaqp.runtime.trace import chrome_trace

        cols = ["epoch", "rank", "loss", "epoch_time_s"] + [f"{p}_s" for p in PHASES]
        write_csv(out / "epochs.csv", [{c: r.get(c, 0.0) for c in cols} for r in records], cols)
        if evals:
            write_csv(out / "evals.csv", evals)
        chrome_trace([res["events"] for res in results], out / "trace.json")
        write_summary(out, summary)
    return summary


def summarize(cfg: TrainConfig, records: list[dict], evals: list[dict]) -> dict:
    """Epoch time = slowest rank per epoch; median over epochs after the warm-up ones."""
    by_epoch: dict[int, list[dict]] = {}
    for r in records:
        by_epoch.setdefault(r["epoch"], []).append(r)
    epochs = sorted(by_epoch)
    kept = epochs[cfg.warmup_epochs:] or epochs
    med = lambda key: statistics.median(max(r.get(key, 0.0) for r in by_epoch[e]) for e in kept)  # noqa: E731
    last = evals[-1] if evals else {}
    best = max(evals, key=lambda e: e["val_acc"]) if evals else {}
    return {
        "dataset": cfg.dataset, "schedule": cfg.schedule, "bits": cfg.bits, "nprocs": cfg.nprocs,
        "model": cfg.model.model, "layers": cfg.model.layers, "hidden": cfg.model.hidden,
        "epochs": cfg.epochs, "measured_epochs": len(kept),
        "epoch_time_s_median": med("epoch_time_s"),
        "comm_time_s_median": med("communicate_s"),
        "phase_time_s_median": {p: med(f"{p}_s") for p in PHASES},
        "final_loss": by_epoch[epochs[-1]][0]["loss"] if epochs else None,
        "solve_time_s_total": sum(r.get("solve_s", 0.0) for r in records if r["rank"] == 0),
        "train_acc": last.get("train_acc"), "val_acc": last.get("val_acc"), "test_acc": last.get("test_acc"),
        "best_val_acc": best.get("val_acc"), "test_acc_at_best_val": best.get("test_acc"),
    }


def run_torchrun(cfg: TrainConfig, out: Path | None) -> dict | None:
    """Body of ``adaqp train --launcher torchrun``: this process is one rank of a torchrun job.

    Every rank partitions the graph itself (deterministic for a seed; no shared file system
    assumed) and the ranks check that they agree before training; rank 0 writes the outputs.
    """
    import dataclasses
    import hashlib
    import os

    import torch.distributed as dist

    from adaqp.errors import require
    from adaqp.runtime.launch import init_process_group_from_env
    from adaqp.runtime.objects import all_gather_json
    from adaqp.runtime.prepare import prepare_plan
    from adaqp.runtime.trainer import train_rank
    from adaqp.runtime.transport import release_direction_groups
    from adaqp.runtime.placement import check_agreement, placement_for

    # every rank decides from its own host (LOCAL_RANK / LOCAL_WORLD_SIZE), before the group exists
    placement = placement_for(cfg.device, int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                              cfg.transport)
    if placement.cuda_index is not None:
        import torch

        torch.cuda.set_device(placement.cuda_index)
    rank, world = init_process_group_from_env(placement.backend, cfg.timeout_s)
    check_agreement(placement)
    cfg = dataclasses.replace(cfg, nprocs=world, progress=cfg.progress and rank == 0)
    if "LOCAL_WORLD_SIZE" in os.environ and "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["LOCAL_WORLD_SIZE"])))
    with tempfile.TemporaryDirectory(prefix=f"adaqp-plan-r{rank}-") as tmp:
        plan_dir = Path(cfg.plan_dir) if cfg.plan_dir else Path(tmp)
        prepare_plan(cfg, plan_dir)
        check_before_launch(cfg, plan_dir)
        digest = hashlib.sha256((plan_dir / "partition.npz").read_bytes()).hexdigest()
        digests = all_gather_json(digest)
        require(len(set(digests)) == 1, "ranks computed different partitions; partition once with "
                                        "`adaqp partition --out DIR` and pass --plan-dir DIR on every node")
        result = train_rank(rank, world, cfg.to_dict(), str(plan_dir))
    results = all_gather_json(result)
    dist.barrier()  # no rank closes its sockets while a peer may still be reading the last gather
    release_direction_groups()
    dist.destroy_process_group()
    return summarize_and_write(cfg, results, out) if rank == 0 else None


def run_configs(cfgs: list[TrainConfig], plan_dir: Path, link: str | None = None) -> list[list[dict]]:
    """Several configurations (same dataset and rank count) back to back in one process group:
    one launch for the lot. Returns, per configuration, the per-rank results of ``train_rank``."""
    from adaqp.errors import require

    require(len({(c.dataset, c.nprocs, c.seed) for c in cfgs}) == 1,
            "run_configs: every configuration must share dataset, rank count and seed")
    first = cfgs[0]
    prepared_plan_dir(first, plan_dir)
    args = ([c.to_dict() for c in cfgs], str(plan_dir))
    timeout = max(c.timeout_s for c in cfgs)
    per_rank = launch("adaqp.runtime.trainer:train_many", first, args, link, timeout_s=timeout)
    return [[per_rank[r][i] for r in range(first.nprocs)] for i in range(len(cfgs))]


def launch(fn: str, cfg: TrainConfig, args: tuple, link: str | None = None, master_addr: str = "127.0.0.1",
           master_port: int | None = None, timeout_s: float | None = None) -> list:
    """``spawn`` ``cfg.nprocs`` ranks with the backend ``cfg`` asks for: on loopback, or with ``link``
    (e.g. ``100mbit``) each rank on its own emulated host with a NIC of that rate
    (:mod:`adaqp.runtime.emulate`; needs root); the rendezvous then moves to rank 0's address."""
    import contextlib

    from adaqp.cluster import parse_bandwidth_Bps
    from adaqp.runtime.emulate import EmulatedNetwork
    from adaqp.runtime.launch import spawn
    from adaqp.runtime.placement import placement_for

    # every spawned rank is on this host: rank 0's placement has the backend they all need
    backend = placement_for(cfg.device, 0, cfg.nprocs, cfg.transport, env={}).backend
    rate_bps = parse_bandwidth_Bps(link, "--link") * 8 if link else None  # the parser gives bytes/s
    with EmulatedNetwork(cfg.nprocs, rate_bps) if link else contextlib.nullcontext() as net:
        return spawn(fn, cfg.nprocs, args, backend=backend, master_addr=net.addresses[0] if net else master_addr,
                     master_port=master_port, timeout_s=timeout_s or cfg.timeout_s,
                     netns=net.namespaces if net else None)
