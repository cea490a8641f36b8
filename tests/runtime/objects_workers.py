"""Rank bodies for tests/runtime/test_objects.py (loaded by file path by ``spawn``'s children)."""

import numpy as np

from adaqp.runtime.objects import all_gather_json, broadcast_json


def _value(rank: int) -> dict:
    """A different value per rank, of a different length, with arrays of several dtypes."""
    return {"rank": rank, "name": "r" * (rank * 50 + 1), "nan": float("nan"), "none": None,
            "pairs": [[[0, "fwd", rank, 1], np.arange(rank + 2, dtype=np.float32) / 3]],
            "ids": np.arange(rank * 7, dtype=np.int64).reshape(-1, 1), "flag": np.bool_(rank % 2)}


def exchange(rank: int, world: int) -> dict:
    """Both helpers, every rank as the broadcast source once; results as plain values."""
    gathered = all_gather_json(_value(rank))
    broadcast = [broadcast_json(_value(rank) if rank == src else None, src=src) for src in range(world)]
    empty = all_gather_json([])  # a zero-length payload is still a message
    return {"gathered": [_plain(g) for g in gathered], "broadcast": [_plain(b) for b in broadcast],
            "empty": empty}


def _plain(v):
    """Arrays as (dtype, shape, values), NaN as a string: comparable with == in the parent."""
    if isinstance(v, np.ndarray):
        return (v.dtype.str, v.shape, v.tolist())
    if isinstance(v, float) and v != v:
        return "nan"
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def expected(rank: int) -> dict:
    """What every rank should receive from ``rank``: tuples and numpy scalars arrive as plain values."""
    v = _value(rank)
    v["flag"] = bool(v["flag"])
    return _plain(v)
