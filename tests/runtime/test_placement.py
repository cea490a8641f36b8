"""runtime.placement: one pure decision of transport, backend and CUDA device per rank."""

import pytest

from adaqp.errors import AdaqpInputError
from adaqp.runtime.placement import NCCL_BACKEND, decide, local_topology, placement_for


@pytest.mark.parametrize("local_rank,local_world,gpus,want", [
    (0, 1, 1, ("nccl", NCCL_BACKEND, 0, False)),  # one rank, one GPU
    (3, 4, 4, ("nccl", NCCL_BACKEND, 3, False)),  # a GPU each
    (1, 2, 8, ("nccl", NCCL_BACKEND, 1, False)),  # fewer ranks than GPUs
    (0, 2, 1, ("gloo-staged", "gloo", 0, True)),  # two ranks share the one GPU
    (3, 4, 1, ("gloo-staged", "gloo", 0, True)),
    (3, 4, 2, ("gloo-staged", "gloo", 1, True)),  # 4 ranks on 2 GPUs: round-robin, shared
    (4, 8, 4, ("gloo-staged", "gloo", 0, True)),
])
def test_cuda_decision(local_rank, local_world, gpus, want):
    p = decide("cuda", local_rank, local_world, gpus)
    assert (p.transport, p.backend, p.cuda_index, p.shared_gpu) == want
    assert p.device == f"cuda:{want[2]}"


@pytest.mark.parametrize("local_rank,local_world", [(0, 1), (1, 4)])
def test_cpu_is_gloo_whatever_the_gpus(local_rank, local_world):
    for gpus in (0, 4):
        p = decide("cpu", local_rank, local_world, gpus)
        assert (p.transport, p.backend, p.cuda_index, p.device) == ("gloo", "gloo", None, "cpu")


@pytest.mark.parametrize("override,local_world,gpus,want", [
    ("gloo-staged", 2, 2, "gloo-staged"),  # staging is allowed on distinct GPUs (slower, but works)
    ("nccl", 2, 2, "nccl"),
    ("gloo", 1, 0, "gloo"),  # device cpu below
])
def test_override_that_works(override, local_world, gpus, want):
    device = "cpu" if override == "gloo" else "cuda"
    assert decide(device, 0, local_world, gpus, override).transport == want


@pytest.mark.parametrize("device,override,local_world,gpus,words", [
    ("cuda", "nccl", 2, 1, "NCCL refuses"),
    ("cuda", "gloo", 1, 1, "CPU tensors"),
    ("cpu", "nccl", 1, 0, "needs CUDA"),
    ("cpu", "gloo-staged", 2, 0, "needs CUDA"),
    ("cuda", None, 2, 0, "no CUDA device"),
    ("cuda", "mpi", 1, 1, "unknown transport"),
    ("tpu", None, 1, 0, "cpu or cuda"),
])
def test_refusals_are_one_line_input_errors(device, override, local_world, gpus, words):
    with pytest.raises(AdaqpInputError, match=words):
        decide(device, 0, local_world, gpus, override)


def test_local_rank_out_of_range():
    with pytest.raises(AdaqpInputError, match="out of range"):
        decide("cuda", 2, 2, 1)


@pytest.mark.parametrize("env,want", [
    ({}, (1, 3)),  # spawn launcher on one host: its rank and world
    ({"LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2"}, (0, 2)),  # torchrun on one of several hosts
    ({"LOCAL_RANK": "0"}, (1, 3)),  # half a torchrun environment is not trusted
])
def test_local_topology(env, want):
    assert local_topology(1, 3, env) == want


def test_bad_local_env_is_an_input_error():
    with pytest.raises(AdaqpInputError, match="integers"):
        local_topology(0, 2, {"LOCAL_RANK": "x", "LOCAL_WORLD_SIZE": "2"})


def test_torchrun_hosts_decide_from_their_own_ranks():
    # rank 5 of 8 is local rank 1 of 4 on its host; this CPU machine has no GPU
    p = placement_for("cpu", 5, 8, env={"LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4"})
    assert p.transport == "gloo"
    with pytest.raises(AdaqpInputError):  # cuda asked on a machine that has none (as here)
        placement_for("cuda", 0, 2, env={}) if not _has_gpu() else decide("cuda", 0, 2, 0)


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()
