"""The Gloo exchange (isend/irecv on one process group per direction) moves exactly what
``all_to_all_single`` moves, uneven and empty splits included."""

import torch
import torch.distributed as dist

from adaqp.runtime.launch import spawn


def _check(rank, world):
    from adaqp.runtime.transport import duplex_all_to_all

    g = torch.Generator().manual_seed(rank)
    send_splits = [(rank * 7 + p * 3) % 5 for p in range(world)]  # some zero, some to itself
    sizes = torch.tensor(send_splits)
    all_sizes = [torch.zeros_like(sizes) for _ in range(world)]
    dist.all_gather(all_sizes, sizes)
    recv_splits = [int(all_sizes[p][rank]) for p in range(world)]
    send = torch.randint(0, 255, (sum(send_splits),), dtype=torch.uint8, generator=g)
    want, got = torch.empty(sum(recv_splits), dtype=torch.uint8), torch.empty(sum(recv_splits), dtype=torch.uint8)
    dist.all_to_all_single(want, send, recv_splits, send_splits)
    duplex_all_to_all(got, send, recv_splits, send_splits).wait()
    return bool(torch.equal(want, got))


def test_duplex_exchange_equals_all_to_all_single():
    assert spawn(_check, 3) == [True, True, True]


def _exchange_ok(rank, world) -> bool:
    from adaqp.runtime.transport import duplex_all_to_all

    send = torch.full((world,), rank, dtype=torch.uint8)
    got = torch.empty(world, dtype=torch.uint8)
    duplex_all_to_all(got, send, [1] * world, [1] * world).wait()
    return got.tolist() == list(range(world))


def _regroup(rank, world, port, release=True):
    from datetime import timedelta

    from adaqp.runtime.transport import release_direction_groups

    first = _exchange_ok(rank, world)
    if release:
        release_direction_groups()
    dist.destroy_process_group()
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=20))
    return first, _exchange_ok(rank, world)  # unreleased, it would use the destroyed group's and raise


def test_direction_groups_are_released_with_their_process_group():
    from adaqp.runtime.launch import free_port

    assert spawn(_regroup, 2, args=(free_port(), True)) == [(True, True), (True, True)]
