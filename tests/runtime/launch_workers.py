"""Rank bodies for tests/runtime/test_launch.py.

They live outside the test module because the children load them by file path (pytest's importlib
mode leaves test modules unimportable by name); ``spawn`` is given ``"<this file>:<function>"``.
"""

import os
import signal
import time

import torch
import torch.distributed as dist


def allreduce_sum(rank, world, scale):
    """Each rank contributes rank+1; everyone returns the sum, times ``scale``."""
    t = torch.tensor([float(rank + 1)])
    dist.all_reduce(t)
    return {"rank": rank, "world": world, "sum": t.item() * scale,
            "master": os.environ["MASTER_ADDR"], "tag": os.environ.get("ADAQP_TEST_TAG")}


def raise_on_rank(rank, world, bad_rank):
    """``bad_rank`` raises before the collective; the others block in it until killed."""
    if rank == bad_rank:
        raise ValueError(f"bad input on rank {rank}")
    t = torch.ones(1)
    dist.all_reduce(t)
    return t.item()


def die_on_rank(rank, world, bad_rank, how):
    """``bad_rank`` dies without a word (``os._exit(3)`` or SIGKILL) while the others all_reduce."""
    dist.barrier()
    if rank == bad_rank:
        time.sleep(0.2)  # let the others enter the all_reduce first
        with open(os.environ["ADAQP_TEST_DEATH_FILE"], "w") as f:
            f.write(repr(time.time()))
        if how == "exit":
            os._exit(3)
        os.kill(os.getpid(), signal.SIGKILL)
    t = torch.ones(1)
    dist.all_reduce(t)
    return t.item()
