"""Exactness check: the distributed forward output and gradients equal the single-process ones.

``distributed_pass`` runs on every rank (one forward + backward, no optimiser step) and returns
its inner nodes' outputs and its summed gradients; ``reference_pass`` computes the same on one
process from the whole graph; ``compare`` puts them side by side. Used by the exactness tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from adaqp.runtime.config import TrainConfig


def distributed_pass(rank: int, world: int, cfg_dict: dict, plan_dir: str) -> dict:
    from adaqp.runtime.model import loss_sum
    from adaqp.runtime.trainer import RankTrainer

    cfg = TrainConfig.from_dict(cfg_dict)
    tr = RankTrainer(cfg, rank, world, Path(plan_dir))
    d = tr.data
    tr.model.train()  # dropout is expected to be 0 here; train mode exercises the backward path
    logits = tr.model(d.x, tr.ctx.aggregate)
    loss = loss_sum(logits, d.labels, d.masks["train"]) / max(d.global_counts["train"], 1)
    loss.backward()
    grads = torch.cat([p.grad.reshape(-1) for p in tr.params])
    dist.all_reduce(grads)
    return {"nodes": d.halo.inner_global.tolist(), "out": logits.detach().numpy().tolist(),
            "grads": grads.numpy().tolist() if rank == 0 else None}


def reference_pass(cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    from adaqp.data.spec import load_dataset
    from adaqp.runtime.model import GNN, loss_sum
    from adaqp.runtime.reference import FullGraphAggregator
    from adaqp.runtime.prepare import normalize_features

    g = load_dataset(cfg.dataset)
    torch.manual_seed(cfg.seed)
    model = GNN(cfg.model, g.num_features, g.num_classes)
    model.train()
    x = torch.as_tensor(normalize_features(g.features, cfg.feature_norm))
    labels = torch.as_tensor(g.labels)
    mask = torch.as_tensor(g.train_mask & (g.labels >= 0) if not g.multilabel else g.train_mask)
    logits = model(x, FullGraphAggregator(g))
    (loss_sum(logits, labels, mask) / max(int(mask.sum()), 1)).backward()
    grads = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    return logits.detach().numpy(), grads.numpy()


def compare(cfg: TrainConfig, results: list[dict]) -> dict:
    """Max absolute differences of outputs and gradients, distributed vs single process."""
    ref_out, ref_grad = reference_pass(cfg)
    out = np.zeros_like(ref_out)
    seen = np.zeros(ref_out.shape[0], dtype=np.int64)
    for r in results:
        out[r["nodes"]] = np.asarray(r["out"], dtype=np.float32)
        seen[r["nodes"]] += 1
    assert (seen == 1).all(), "every node must be inner on exactly one rank"
    grad = np.asarray(results[0]["grads"], dtype=np.float32)
    return {"max_abs_out_diff": float(np.abs(out - ref_out).max()),
            "max_abs_grad_diff": float(np.abs(grad - ref_grad).max()),
            "out_scale": float(np.abs(ref_out).max()), "grad_scale": float(np.abs(ref_grad).max())}


def distributed_pass_many(rank: int, world: int, jobs: list[tuple[dict, str]]) -> list[dict]:
    """Several (config, plan folder) checks in one process group: one spawn per world size."""
    return [distributed_pass(rank, world, cfg, plan_dir) for cfg, plan_dir in jobs]
