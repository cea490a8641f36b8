"""The per-rank training loop: runs in every process of the group.

An epoch is forward (with the halo exchanges the schedule asks for), backward (gradients of
halo rows flow back), one all-reduce of all gradients (summed: the loss is already normalised by
the global number of training nodes, so the sum *is* the single-process gradient) and an Adam
step. Evaluation is full precision and outside the measured epoch time.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from adaqp.runtime import faults
from adaqp.runtime.adaptive import AdaptiveBits
from adaqp.runtime.aggregate import RankContext
from adaqp.runtime.config import TrainConfig
from adaqp.runtime.exchange import HaloExchanger
from adaqp.runtime.instrument import instrument_dense
from adaqp.runtime.memory import PeakMemory
from adaqp.runtime.model import GNN, correct_counts, loss_sum
from adaqp.runtime.prepare import load_bitplan, load_rank
from adaqp.runtime.trace import PhaseTimer
from adaqp.runtime.placement import placement_for
from adaqp.runtime.transport import make_transport
from adaqp.schedule import Schedule


class RankTrainer:
    def __init__(self, cfg: TrainConfig, rank: int, world: int, plan_dir: Path) -> None:
        self.cfg, self.rank, self.world = cfg, rank, world
        self.placement = placement_for(cfg.device, rank, world, cfg.transport)
        self.device = torch.device(self.placement.device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)  # NCCL and the default stream follow it
        self.data = d = load_rank(cfg, rank, world, plan_dir, self.device)
        self.schedule = Schedule.parse(cfg.schedule)
        self.bitplan = load_bitplan(cfg, d.pair_rows)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.model = GNN(cfg.model, d.in_dim, d.num_classes).to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        torch.manual_seed(cfg.seed * 7919 + rank + 1)  # dropout masks differ per rank
        self.timer = PhaseTimer(rank)
        instrument_dense(self.model, self.timer)
        self.transport = transport = make_transport(self.placement.transport)
        widths = cfg.model.widths(d.in_dim, d.num_classes)[:-1]
        ex = HaloExchanger(d.halo, widths, transport, self.device, self.bitplan, self.schedule.quantize,
                           seed=cfg.seed, timer=self.timer)
        self.ctx = RankContext(d.halo, ex, self.timer, self.schedule.overlap, self.device, self.schedule.stale)
        # evaluation: same graph, fp32 exchange, no overlap, not timed
        eval_ex = HaloExchanger(d.halo, widths, transport, self.device, None, False)
        self.eval_ctx = RankContext(d.halo, eval_ex, PhaseTimer(rank, enabled=False), False, self.device)
        self.params = [p for p in self.model.parameters()]
        self.start_epoch = 0

    # ---- one epoch ----------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict:
        d, t = self.data, self.timer
        t.mark_epoch(epoch)
        faults.set_epoch(epoch)
        t0 = time.perf_counter()
        self.model.train()
        self.opt.zero_grad(set_to_none=False)
        with t.phase("forward"):
            logits = self.model(d.x, self.ctx.aggregate)
            loss = loss_sum(logits, d.labels, d.masks["train"]) / max(d.global_counts["train"], 1)
        with t.phase("backward"):
            loss.backward()
        with t.phase("allreduce"):
            flat = torch.cat([p.grad.reshape(-1) for p in self.params] + [loss.detach().reshape(1)])
            faults.point("allreduce")
            self.transport.all_reduce(flat)  # the training loss rides along: no extra collective
        self._unflatten(flat)
        with t.phase("optimizer"):
            self.opt.step()
        if self.device.type == "cuda":  # the epoch ends when its kernels do, not when they are queued
            torch.cuda.synchronize(self.device)
        wall = time.perf_counter() - t0
        return {"epoch": epoch, "rank": self.rank, "loss": float(flat[-1]), "epoch_time_s": wall,
                **{f"{k}_s": v for k, v in t.epoch_breakdown(epoch).items()}}

    def _unflatten(self, flat: torch.Tensor) -> None:
        off = 0
        for p in self.params:
            n = p.numel()
            p.grad.copy_(flat[off:off + n].view_as(p))
            off += n

    @torch.no_grad()
    def evaluate(self) -> dict:
        d = self.data
        self.model.eval()
        logits = self.model(d.x, self.eval_ctx.aggregate)
        counts = torch.tensor([c for k in ("train", "val", "test")
                               for c in correct_counts(logits, d.labels, d.masks[k])], dtype=torch.float64)
        dist.all_reduce(counts)
        c = counts.tolist()
        return {f"{k}_acc": c[2 * i] / max(c[2 * i + 1], 1.0) for i, k in enumerate(("train", "val", "test"))}

    # ---- checkpoints --------------------------------------------------------------------
    def state(self, epoch: int) -> dict:
        from adaqp.runtime.checkpoint import rng_state

        return {"epoch": epoch, "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "rng": rng_state(), "generator": self.ctx.exchanger.generator.get_state(),
                "bitplan": bitplan_to_tensors(self.bitplan),
                # a stale schedule's last exchanges, decoded: the next epoch aggregates over them
                "stale": self.ctx.stale.state() if self.ctx.stale is not None else {}}

    def restore(self, state: dict) -> None:
        from adaqp.runtime.checkpoint import set_rng_state

        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        self.ctx.exchanger.generator.set_state(state["generator"])
        self.bitplan = bitplan_from_tensors(state["bitplan"])
        if self.schedule.quantize:  # an adaptive run resumes with the plan it had re-solved
            self.ctx.exchanger.set_bitplan(self.bitplan)
        if self.ctx.stale is not None:
            self.ctx.stale.restore(state.get("stale", {}))  # none saved: the next epoch runs fresh
        self.start_epoch = int(state["epoch"]) + 1


def bitplan_to_tensors(plan) -> dict:
    """A BitPlan as tensors (checkpoints load with weights_only=True: no pickled objects)."""
    keys = list(plan.channels())
    chans = [plan.channel(*k) for k in keys]
    return {"num_layers": plan.num_layers, "num_parts": plan.num_parts,
            "keys": torch.tensor([[l, 0 if d == "fwd" else 1, a, b] for l, d, a, b in keys], dtype=torch.int64).reshape(-1, 4),
            "sizes": torch.tensor([c.size for c in chans], dtype=torch.int64),
            "bits": torch.from_numpy(np.concatenate(chans) if chans else np.zeros(0, np.int8))}


def bitplan_from_tensors(t: dict):
    from adaqp.plans import BitPlan

    bits = t["bits"].numpy() if hasattr(t["bits"], "numpy") else np.asarray(t["bits"])
    ends = np.cumsum(np.asarray(t["sizes"], dtype=np.int64))
    chans = np.split(bits.astype(np.int8), ends[:-1]) if len(ends) else []
    keys = [(int(l), "fwd" if d == 0 else "bwd", int(a), int(b)) for l, d, a, b in np.asarray(t["keys"]).reshape(-1, 4).tolist()]
    return BitPlan(int(t["num_layers"]), int(t["num_parts"]), dict(zip(keys, chans)))


def train_rank(rank: int, world: int, cfg_dict: dict, plan_dir: str) -> dict:
    """Entry point of every rank (local spawn or torchrun): train, return records to the launcher."""
    from adaqp.runtime.resume import write_checkpoint

    cfg = TrainConfig.from_dict(cfg_dict)
    faults.set_rank(rank)
    mem = PeakMemory()  # before the rank loads anything: its baseline (runtime/memory.py)
    tr = RankTrainer(cfg, rank, world, Path(plan_dir))
    if cfg.resume:
        resume(tr, cfg.checkpoint_dir)
    records, evals = [], []
    bar = tqdm(range(tr.start_epoch, cfg.epochs), desc=f"{cfg.schedule} x{world}", unit="epoch",
               disable=True if rank != 0 or not cfg.progress else None, dynamic_ncols=True)
    adaptive = AdaptiveBits(tr, plan_dir) if cfg.adaptive else None
    mem.training_starts(tr.device)
    for epoch in bar:
        if adaptive:
            adaptive.before_epoch(epoch)
        records.append(tr.train_epoch(epoch))
        if adaptive:
            solve_s = adaptive.after_epoch(epoch)
            if solve_s is not None:
                records[-1]["solve_s"] = solve_s
        if (epoch + 1) % cfg.eval_every == 0 or epoch == cfg.epochs - 1:
            evals.append({"epoch": epoch, **tr.evaluate()})
        if cfg.checkpoint_every and (epoch + 1) % cfg.checkpoint_every == 0:
            write_checkpoint(cfg.checkpoint_dir, rank, epoch, tr.state(epoch))
        acc = {"val": f"{evals[-1]['val_acc']:.3f}"} if evals else {}
        bar.set_postfix(loss=f"{records[-1]['loss']:.4f}", ms=f"{records[-1]['epoch_time_s'] * 1e3:.1f}", **acc)
    if tr.ctx.stale is not None:  # the last epoch's exchanges: their buffers must outlive them
        tr.ctx.stale.settle()
    return {"rank": rank, "records": records, "evals": evals, "events": tr.timer.events(),
            "device": str(tr.device), "transport": tr.placement.transport,
            "peak_memory_bytes": mem.peak_bytes(), "peak_memory_measure": mem.measure,
            "send_nbytes": [tr.ctx.exchanger.channel_nbytes(*k)[0] for k in sorted(tr.ctx.exchanger.channels)],
            # the plan an adaptive run ended with (what validation predicts the epoch of)
            # as lists: tensors sent through a pipe travel as shared memory that dies with this process
            "bitplan": {k: v.tolist() if hasattr(v, "tolist") else v
                        for k, v in bitplan_to_tensors(tr.bitplan).items()} if cfg.adaptive else None}


def resume(tr: RankTrainer, directory: str) -> None:
    """Restore the newest epoch every rank has a valid checkpoint for; the ranks agree on it
    through their lists of valid epochs (each rank may see only its own files: torchrun)."""
    from adaqp.runtime.checkpoint import load_checkpoint
    from adaqp.runtime.objects import all_gather_json
    from adaqp.runtime.resume import agree, discard_after, epoch_path, require_epochs_left, valid_epochs

    epoch = agree(all_gather_json(valid_epochs(directory, tr.rank)), directory)
    require_epochs_left(epoch, tr.cfg.epochs, directory)  # every rank raises alike: none waits
    tr.restore(load_checkpoint(epoch_path(directory, tr.rank, epoch)))
    discard_after(directory, tr.rank, epoch)


def train_many(rank: int, world: int, cfg_dicts: list[dict], plan_dir: str) -> list[dict]:
    """Several runs in one process group (seeds, schedules): saves a spawn per configuration."""
    return [train_rank(rank, world, c, plan_dir) for c in cfg_dicts]
