"""Where a rank runs and how it talks: one decision for the launcher, torchrun and every rank.

From the device type, this rank's place on its host (local rank, local world size) and the
number of GPUs the host has, :func:`decide` picks

- the transport: ``gloo`` for CPU tensors; ``nccl`` when every local rank owns a distinct GPU;
  ``gloo-staged`` when ranks share a GPU (NCCL refuses two ranks on one device, and Gloo crashed
  on CUDA tensors, so those ranks stage through pinned host buffers);
- the process-group backend that transport needs (NCCL groups also get Gloo for the CPU tensors
  of evaluation and the JSON exchanges of ``runtime/objects.py``);
- this rank's CUDA device index (``local_rank % gpus``: ranks fill the GPUs round-robin).

The launcher (which picks the backend before any rank exists) and each rank (which builds the
transport) call the same pure function on the same inputs, so they cannot disagree. Across
hosts the inputs are local: a job that mixes hosts with and without GPU sharing is refused
after the group starts (:func:`check_agreement`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from adaqp.errors import require

TRANSPORTS = ("gloo", "nccl", "gloo-staged")
# NCCL for CUDA tensors, Gloo for the CPU ones (evaluation counts, runtime/objects.py's exchanges)
NCCL_BACKEND = "cpu:gloo,cuda:nccl"


@dataclass(frozen=True)
class Placement:
    transport: str  # gloo | nccl | gloo-staged
    backend: str  # what init_process_group gets
    cuda_index: int | None  # None on CPU
    shared_gpu: bool = False  # several local ranks on one GPU

    @property
    def device(self) -> str:
        return "cpu" if self.cuda_index is None else f"cuda:{self.cuda_index}"


def backend_for(transport: str) -> str:
    return NCCL_BACKEND if transport == "nccl" else "gloo"


def decide(device_type: str, local_rank: int, local_world: int, gpu_count: int,
           override: str | None = None) -> Placement:
    """The placement of one rank (a pure function: everything it reads is an argument)."""
    require(device_type in ("cpu", "cuda"), f"device must be cpu or cuda, got {device_type!r}")
    require(local_world >= 1 and 0 <= local_rank < local_world,
            f"local rank {local_rank} out of range for {local_world} local rank(s)")
    require(override is None or override in TRANSPORTS,
            f"unknown transport {override!r}; choose from {', '.join(TRANSPORTS)}")
    if device_type == "cpu":
        require(override in (None, "gloo"), f"transport {override!r} needs CUDA tensors; on CPU use gloo")
        return Placement("gloo", "gloo", None)
    require(gpu_count >= 1, "--device cuda: no CUDA device is visible to this process")
    shared = local_world > gpu_count
    name = override or ("gloo-staged" if shared else "nccl")
    require(name != "gloo", "transport gloo takes CPU tensors (Gloo crashed on CUDA tensors); "
                            "on CUDA use gloo-staged or nccl")
    require(name != "nccl" or not shared,
            f"transport nccl: {local_world} local ranks on {gpu_count} GPU(s) would share a GPU, which "
            "NCCL refuses; use gloo-staged or fewer ranks per host")
    return Placement(name, backend_for(name), local_rank % gpu_count, shared)


def local_topology(rank: int, world: int, env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """``(local_rank, local_world)``: torchrun's LOCAL_RANK / LOCAL_WORLD_SIZE when both are set,
    else the spawn launcher's view (every rank on this one host)."""
    env = os.environ if env is None else env
    if "LOCAL_RANK" in env and "LOCAL_WORLD_SIZE" in env:
        try:
            return int(env["LOCAL_RANK"]), int(env["LOCAL_WORLD_SIZE"])
        except ValueError:
            require(False, f"LOCAL_RANK / LOCAL_WORLD_SIZE must be integers, got "
                           f"{env['LOCAL_RANK']!r} / {env['LOCAL_WORLD_SIZE']!r}")
    return rank, world


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def placement_for(device_type: str, rank: int, world: int, override: str | None = None,
                  env: Mapping[str, str] | None = None) -> Placement:
    """:func:`decide` with this process's environment and GPU count."""
    local_rank, local_world = local_topology(rank, world, env)
    return decide(device_type, local_rank, local_world, gpu_count() if device_type == "cuda" else 0, override)


def check_agreement(placement: Placement) -> None:
    """Refuse a job whose ranks chose different transports (hosts with different GPU sharing):
    one rank posting NCCL collectives while another posts Gloo sends would hang."""
    from adaqp.runtime.objects import all_gather_json

    names = all_gather_json(placement.transport)
    require(len(set(names)) == 1, f"ranks chose different transports {sorted(set(names))} (hosts differ in "
                                  "ranks per GPU); pass --transport gloo-staged to all of them")
