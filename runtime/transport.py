"""Moving bytes between ranks: one ``all_to_all`` over uneven splits, three transports.

- ``gloo``: CPU tensors straight through Gloo (these machines, CI), as point-to-point sends with
  one TCP connection per *direction* of every pair (see :class:`GlooTransport`).
- ``nccl``: CUDA tensors through NCCL, for ranks that own distinct GPUs.
- ``gloo-staged``: CUDA ranks sharing a GPU (NCCL refuses two ranks on one device, Gloo crashed
  on CUDA tensors): copy to a pinned host buffer, Gloo, copy back (:mod:`adaqp.runtime.staged`).

Which one a rank uses is decided by :mod:`adaqp.runtime.placement`.

Every message is a flat uint8 buffer with per-peer byte splits, so quantized and fp32 payloads
take the same path (an fp32 tensor is reinterpreted as bytes, no copy).
"""

from __future__ import annotations

import itertools

import torch
import torch.distributed as dist

from adaqp.errors import require

TRANSPORTS = ("gloo", "nccl", "gloo-staged")


class Done:
    """A finished exchange (what a blocking call hands back, so callers always ``wait()``)."""

    def wait(self) -> None:
        return None


_DIRECTION_GROUPS: dict[int, tuple] = {}


def direction_groups() -> tuple:
    """Two process groups over all ranks, created once per process (collectively, on first use):
    the first carries the bytes a lower rank sends a higher one, the second the way back.

    Why: Gloo gives each pair of ranks one TCP connection per group. When both directions of a
    pair share it, a shaped link measured here moved 1 MB each way in 80 or 160 ms at random (the
    two directions often ran one after the other: the data of one waits behind the other's in the
    same queues), versus 80-86 ms every time with one connection per direction."""
    world = dist.get_world_size()
    if world not in _DIRECTION_GROUPS:
        ranks = list(range(world))
        _DIRECTION_GROUPS[world] = (dist.new_group(ranks, backend="gloo"), dist.new_group(ranks, backend="gloo"))
    return _DIRECTION_GROUPS[world]


def release_direction_groups() -> None:
    """Forget the direction groups; call it before ``destroy_process_group``. They belong to the
    process group being destroyed: a group initialised later in the same process needs its own,
    and dropping them here frees their connections while the process group still exists, rather
    than at interpreter exit."""
    _DIRECTION_GROUPS.clear()


def duplex_all_to_all(recv: torch.Tensor, send: torch.Tensor, recv_splits: list[int], send_splits: list[int]):
    """``all_to_all_single`` as isend/irecv per peer on :func:`direction_groups`; returns the work."""
    up, down = direction_groups()
    me, world = dist.get_rank(), dist.get_world_size()
    so = [0] + list(itertools.accumulate(send_splits))
    ro = [0] + list(itertools.accumulate(recv_splits))
    reqs = []
    for k in range(1, world):  # peers in a rotating order, so no rank is everyone's first target
        to, frm = (me + k) % world, (me - k) % world
        if send_splits[to]:
            reqs.append(dist.isend(send[so[to]:so[to + 1]], to, group=up if me < to else down))
        if recv_splits[frm]:
            reqs.append(dist.irecv(recv[ro[frm]:ro[frm + 1]], frm, group=up if frm < me else down))
    if recv_splits[me]:
        recv[ro[me]:ro[me + 1]].copy_(send[so[me]:so[me + 1]])
    return _AllWork(reqs)


class _AllWork:
    def __init__(self, reqs: list) -> None:
        self._reqs = reqs

    def wait(self) -> None:
        for r in self._reqs:
            r.wait()

    def is_completed(self) -> bool:
        return all(r.is_completed() for r in self._reqs)


class GlooTransport:
    name = "gloo"

    def all_to_all(self, recv: torch.Tensor, send: torch.Tensor, recv_splits: list[int],
                   send_splits: list[int], async_op: bool):
        work = duplex_all_to_all(recv, send, recv_splits, send_splits)
        if not async_op:
            work.wait()
            return Done()
        return work

    def all_reduce(self, t: torch.Tensor) -> None:
        dist.all_reduce(t)


class NcclTransport:
    name = "nccl"  # one collective; NCCL runs it on its own stream

    def all_to_all(self, recv, send, recv_splits, send_splits, async_op: bool):
        work = dist.all_to_all_single(recv, send, recv_splits, send_splits, async_op=async_op)
        return work if async_op else Done()

    def all_reduce(self, t: torch.Tensor) -> None:
        dist.all_reduce(t)


def make_transport(name: str):
    """A transport by name (:func:`adaqp.runtime.placement.decide` picks the name)."""
    from adaqp.runtime.staged import StagedTransport

    require(name in TRANSPORTS, f"unknown transport {name!r}; choose from {', '.join(TRANSPORTS)}")
    return {"gloo": GlooTransport, "nccl": NcclTransport, "gloo-staged": StagedTransport}[name]()


def choose_transport(device: torch.device, override: str | None = None, gpus_distinct: bool = True):
    """Kept for callers that know whether their GPUs are distinct; ranks use
    :func:`adaqp.runtime.placement.placement_for`, which finds out."""
    from adaqp.runtime.placement import decide

    local_world = 1 if gpus_distinct else 2  # what the flag stands for: alone on a GPU, or not
    return make_transport(decide(device.type, 0, local_world, 1, override).transport)


def backend_for(transport_name: str) -> str:
    """The process-group backend a transport needs."""
    from adaqp.runtime.placement import backend_for as _backend_for

    return _backend_for(transport_name)
