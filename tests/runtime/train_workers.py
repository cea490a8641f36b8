"""Rank bodies for the training tests (loaded by file path in the spawned children)."""

import os
from pathlib import Path


def train_then_die(rank, world, cfg_dict, plan_dir):
    """Rank 1 dies after one epoch, while the others keep training."""
    from adaqp.runtime.config import TrainConfig
    from adaqp.runtime.trainer import RankTrainer, train_rank

    if rank != 1:
        return train_rank(rank, world, cfg_dict, plan_dir)
    tr = RankTrainer(TrainConfig.from_dict(cfg_dict), rank, world, Path(plan_dir))
    tr.train_epoch(0)
    os._exit(7)
