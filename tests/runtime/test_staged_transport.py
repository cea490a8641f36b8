"""runtime.staged: the host-staged exchange moves what Gloo moves, async and blocking, with host
buffers allocated once per device buffer; on a GPU also with streams and events."""

import pytest
import torch
import torch.distributed as dist

from adaqp.runtime.launch import spawn

NO_GPU = "needs a CUDA GPU: the staged path's streams, events and pinned buffers exist only there"


def _splits(rank, world):
    send_splits = [0 if p == rank else (rank * 7 + p * 3) % 5 * 64 for p in range(world)]  # some empty
    sizes = torch.tensor(send_splits)
    every = [torch.zeros_like(sizes) for _ in range(world)]
    dist.all_gather(every, sizes)
    return [int(every[p][rank]) for p in range(world)], send_splits


def _exchange_many(rank, world, device: str) -> dict:
    from adaqp.runtime.staged import StagedTransport
    from adaqp.runtime.transport import duplex_all_to_all

    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    t = StagedTransport()
    recv_splits, send_splits = _splits(rank, world)
    send = torch.empty(sum(send_splits), dtype=torch.uint8, device=dev)
    recv = torch.empty(sum(recv_splits), dtype=torch.uint8, device=dev)
    ok = []
    for i in range(4):  # the same buffers every call, as the exchanger uses them
        src = torch.randint(0, 255, (send.numel(),), dtype=torch.uint8, generator=torch.Generator().manual_seed(rank * 10 + i))
        send.copy_(src)  # queued on the current stream: the exchange must wait for it
        if dev.type == "cuda":
            torch.cuda._sleep(2_000_000)  # keep the current stream busy: a missed event shows
            send.add_(0)
        want = torch.empty(sum(recv_splits), dtype=torch.uint8)
        duplex_all_to_all(want, src, recv_splits, send_splits).wait()
        work = t.all_to_all(recv, send, recv_splits, send_splits, async_op=i % 2 == 0)
        work.wait()
        ok.append(bool(torch.equal(recv.cpu(), want)))
    s = torch.arange(6, dtype=torch.float32, device=dev) * (rank + 1)
    t.all_reduce(s)
    total = sum(range(1, world + 1))
    return {"ok": ok, "allocations": t.host.allocations,
            "reduce_ok": bool(torch.equal(s.cpu(), torch.arange(6, dtype=torch.float32) * total))}


def test_staged_equals_gloo_on_cpu_tensors():
    for r in spawn(_exchange_many, 3, ("cpu",)):
        assert r["ok"] == [True] * 4 and r["reduce_ok"]
        assert r["allocations"] == 2  # a send and a recv twin, once for four calls


def _raises_in_wait(rank, world):
    from adaqp.runtime.staged import StagedTransport

    t = StagedTransport()
    send = torch.zeros(4, dtype=torch.uint8)
    recv = torch.zeros(2, dtype=torch.uint8)  # too small for what this rank sends itself
    splits = [4, 0] if rank == 0 else [0, 4]
    work = t.all_to_all(recv, send, splits, splits, async_op=True)
    try:
        work.wait()
    except Exception as e:  # noqa: BLE001
        return type(e).__name__
    return "no error"


def test_a_failure_in_the_comm_thread_reaches_wait():
    assert all(r != "no error" for r in spawn(_raises_in_wait, 2))


def test_host_twins_are_dropped_with_their_device_buffer():
    import gc

    from adaqp.runtime.staged import HostBuffers

    h = HostBuffers()
    a = torch.empty(100, dtype=torch.uint8)
    assert h.twin(a) is h.twin(a) and h.allocations == 1
    del a
    gc.collect()
    assert len(h) == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
def test_staged_on_one_gpu_two_ranks():
    for r in spawn(_exchange_many, 2, ("cuda:0",)):
        assert r["ok"] == [True] * 4 and r["reduce_ok"] and r["allocations"] == 2


def _launch_does_not_block(rank, world):
    import time

    from adaqp.runtime.staged import StagedTransport

    torch.cuda.set_device(0)
    t = StagedTransport()
    send = torch.ones(1 << 20, dtype=torch.uint8, device="cuda")
    recv = torch.empty(1 << 20, dtype=torch.uint8, device="cuda")
    splits = [0, 1 << 20] if rank == 0 else [1 << 20, 0]
    t.all_to_all(recv, send, splits, splits, async_op=False)  # groups and host buffers made, not timed
    torch.cuda.synchronize()
    torch.cuda._sleep(200_000_000)  # ~0.1 s of GPU work queued before the launch
    t0 = time.perf_counter()
    work = t.all_to_all(recv, send, splits, splits, async_op=True)
    launch_s = time.perf_counter() - t0
    work.wait()
    torch.cuda.synchronize()
    return launch_s, bool((recv == 1).all())


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
def test_async_launch_returns_before_queued_compute_finishes():
    for launch_s, ok in spawn(_launch_does_not_block, 2):
        assert ok and launch_s < 0.02
