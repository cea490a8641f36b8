"""Opt-in fault injection: ``ADAQP_FAULT=RANK:PHASE:EPOCH`` makes that rank SIGKILL itself there.

The fault campaign (:mod:`adaqp.experiments.faults`) uses it to kill a rank at a chosen point
rather than at whatever moment a timer happens to fire. Phases, each checked at one place:

- ``exchange``: a halo exchange is about to be launched (:meth:`HaloExchanger.start`);
- ``allreduce``: the gradient all-reduce is about to run (:meth:`RankTrainer.train_epoch`);
- ``checkpoint``: the checkpoint file is written but not yet renamed into place
  (:func:`adaqp.runtime.checkpoint.save_checkpoint`), i.e. in the middle of a checkpoint write;
- ``resolve``: an adaptive re-solve's broadcast is about to run (rank 0 has solved, the others
  wait for the plan; :meth:`AdaptiveBits.after_epoch`).

The variable is read once, at import. When it is unset :func:`point` is one comparison against
``None``, so the hooks cost nothing in normal runs. Before the kill the rank writes one line to
stderr with the wall-clock time, which the campaign reads to time how long the job takes to end.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from adaqp.errors import AdaqpInputError

ENV = "ADAQP_FAULT"
PHASES = ("exchange", "allreduce", "checkpoint", "resolve")
MARK = "adaqp fault:"  # the campaign looks for this prefix in the job's stderr


def parse(text: str | None) -> tuple[int, str, int] | None:
    """``"1:allreduce:3"`` -> ``(1, "allreduce", 3)``; None or empty -> None; anything else refused."""
    if not text:
        return None
    parts = text.split(":")
    bad = AdaqpInputError(f"{ENV}={text!r}: expected RANK:PHASE:EPOCH with PHASE one of {', '.join(PHASES)}")
    if len(parts) != 3 or parts[1] not in PHASES:
        raise bad
    try:
        rank, epoch = int(parts[0]), int(parts[2])
    except ValueError:
        raise bad from None
    if rank < 0 or epoch < 0:
        raise bad
    return rank, parts[1], epoch


_SPEC = parse(os.environ.get(ENV))
_where = {"rank": -1, "epoch": -1}  # set by the trainer; only read when a fault is armed


def set_rank(rank: int) -> None:
    _where["rank"] = rank


def set_epoch(epoch: int) -> None:
    _where["epoch"] = epoch


def point(phase: str) -> None:
    """Kill this process with SIGKILL if the armed fault is this rank, ``phase`` and epoch."""
    if _SPEC is None:
        return
    if _SPEC != (_where["rank"], phase, _where["epoch"]):
        return
    rank, _, epoch = _SPEC
    print(f"{MARK} SIGKILL rank {rank} at {phase} in epoch {epoch} t={time.time():.6f}",
          file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
