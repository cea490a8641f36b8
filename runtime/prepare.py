"""Everything a rank loads before its first epoch: graph, partition, halo plan, BitPlan, tensors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from adaqp.errors import require
from adaqp.graph import Graph
from adaqp.halo import HaloPlan, RankHalo, build_halo_plan
from adaqp.plans import BitPlan
from adaqp.runtime.config import TrainConfig


def prepare_plan(cfg: TrainConfig, plan_dir: Path, graph: Graph | None = None) -> Path:
    """Partition once (in the launcher) and save partition + halo plan for the ranks to load."""
    from adaqp.data.spec import load_dataset
    from adaqp.partition import load_partition, partition_graph, save_partition

    graph = graph or load_dataset(cfg.dataset)
    if (plan_dir / "partition.json").exists():
        part = load_partition(plan_dir, graph)
        require(part.num_parts == cfg.nprocs, f"partition in {plan_dir} has {part.num_parts} parts "
                                              f"but the run has {cfg.nprocs} ranks (world size != parts)")
    else:
        part = partition_graph(graph, cfg.nprocs, method=cfg.partition_method, seed=cfg.seed)
        save_partition(part, plan_dir, graph)
    if not (plan_dir / "halo_plan.json").exists():
        build_halo_plan(graph, part).save(plan_dir)
    return plan_dir


@dataclass
class RankData:
    graph_name: str
    halo: RankHalo
    pair_rows: np.ndarray
    x: torch.Tensor
    labels: torch.Tensor
    masks: dict[str, torch.Tensor]
    global_counts: dict[str, int]
    num_classes: int
    in_dim: int


def normalize_features(x: np.ndarray, how: str) -> np.ndarray:
    """Row-normalise (Kipf & Welling) bag-of-words features; 'auto' does so only when every
    feature is non-negative (row sums of signed Gaussian features can be ~0)."""
    if how == "none" or (how == "auto" and x.min() < 0):
        return x
    s = x.sum(1, keepdims=True)
    return np.divide(x, s, out=np.zeros_like(x), where=s > 0)


def load_rank(cfg: TrainConfig, rank: int, world: int, plan_dir: Path, device: torch.device) -> RankData:
    from adaqp.data.spec import load_dataset

    graph = load_dataset(cfg.dataset)
    plan = HaloPlan.load(plan_dir, graph=graph)
    require(plan.num_parts == world, f"the halo plan has {plan.num_parts} parts but the world size is "
                                     f"{world}; partition again with --parts {world}")
    halo = plan.ranks[rank]
    idx = halo.inner_global
    x = normalize_features(graph.features[idx], cfg.feature_norm)
    labels = graph.labels[idx]
    masks = {k: getattr(graph, f"{k}_mask")[idx] for k in ("train", "val", "test")}
    if not graph.multilabel:  # unlabelled nodes (-1) never count
        masks = {k: m & (labels >= 0) for k, m in masks.items()}
        gl = graph.labels >= 0
    else:
        gl = np.ones(graph.num_nodes, bool)
    counts = {k: int((getattr(graph, f"{k}_mask") & gl).sum()) for k in ("train", "val", "test")}
    to = lambda a, dt: torch.as_tensor(a, dtype=dt, device=device)  # noqa: E731
    return RankData(graph.name, halo, plan.pair_rows(), to(x, torch.float32),
                    to(labels, torch.float32 if graph.multilabel else torch.int64),
                    {k: to(m, torch.bool) for k, m in masks.items()}, counts, graph.num_classes,
                    graph.num_features)


def load_bitplan(cfg: TrainConfig, pair_rows: np.ndarray) -> BitPlan:
    """The BitPlan the run executes: uniform ``--bits`` or a solver's file, checked against the plan."""
    if cfg.adaptive:  # the first cycle runs at 8 bits (adaptive.py re-solves later)
        return BitPlan.uniform(pair_rows, cfg.model.layers, 8)
    if cfg.uniform_bits is not None:
        return BitPlan.uniform(pair_rows, cfg.model.layers, cfg.uniform_bits)
    return BitPlan.load(cfg.bits).validate(pair_rows, cfg.model.layers)
