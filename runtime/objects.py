"""Plain values between ranks without pickle: JSON plus raw numpy buffers, carried as uint8 tensors.

``torch.distributed``'s ``*_object`` collectives unpickle whatever a peer sends, so a compromised or
merely confused peer can run code on every rank. These helpers carry only what JSON can say (dicts
with string keys, lists, strings, numbers, booleans, None) and numpy arrays of numeric dtypes, whose
bytes are appended after the JSON header and described there by dtype and shape::

    [8 bytes: header length, little-endian][header: UTF-8 JSON][array 0 bytes][array 1 bytes]...

Tuples arrive as lists and numpy scalars as Python numbers; anything else (a tensor, a set, a dict
with non-string keys, which JSON would otherwise turn into strings silently) raises ``TypeError``
on the sending rank. The collectives always use CPU tensors, which an NCCL group routes to its Gloo
side, so the same call works on every placement.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

__all__ = ["encode", "decode", "broadcast_json", "all_gather_json"]

_LEN_BYTES = 8
_ARRAY_KEY = "__ndarray__"
# byte order is fixed by the dtype string ("<f4"), so hosts of either endianness read the same values
_DTYPES = {np.dtype(t).str for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                                     np.uint32, np.uint64, np.float16, np.float32, np.float64)}


def _pack(obj: Any, buffers: list[bytes]) -> Any:
    """``obj`` with every array replaced by a reference into ``buffers``; refuses what JSON would alter."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, float)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        a = a.astype(a.dtype.newbyteorder("<")) if a.dtype.byteorder == ">" else a
        if a.dtype.str not in _DTYPES:
            raise TypeError(f"cannot send an array of dtype {a.dtype} between ranks")
        buffers.append(a.tobytes())
        return {_ARRAY_KEY: len(buffers) - 1, "dtype": a.dtype.str, "shape": list(a.shape)}
    if isinstance(obj, (list, tuple)):
        return [_pack(x, buffers) for x in obj]
    if isinstance(obj, dict):
        bad = [k for k in obj if not isinstance(k, str)]
        if bad:
            raise TypeError(f"dict keys sent between ranks must be strings, got {bad[0]!r}")
        if _ARRAY_KEY in obj:
            raise TypeError(f"the key {_ARRAY_KEY!r} is reserved for arrays")
        return {k: _pack(v, buffers) for k, v in obj.items()}
    raise TypeError(f"cannot send a {type(obj).__name__} between ranks (JSON values and numpy arrays only)")


def encode(obj: Any) -> bytes:
    """``obj`` as bytes: the JSON header, then the arrays' raw buffers."""
    buffers: list[bytes] = []
    header = json.dumps({"value": _pack(obj, buffers), "sizes": [len(b) for b in buffers]},
                        separators=(",", ":"), allow_nan=True).encode()
    return len(header).to_bytes(_LEN_BYTES, "little") + header + b"".join(buffers)


def decode(data: bytes) -> Any:
    """The value :func:`encode` made; a malformed message raises ``ValueError``, never runs code."""
    data = bytes(data)
    n = int.from_bytes(data[:_LEN_BYTES], "little")
    if len(data) < _LEN_BYTES or _LEN_BYTES + n > len(data):
        raise ValueError("malformed rank message: header runs past the end")
    try:
        head = json.loads(data[_LEN_BYTES:_LEN_BYTES + n])
        sizes = [int(s) for s in head["sizes"]]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"malformed rank message: {e}") from None
    offsets = np.cumsum([_LEN_BYTES + n, *sizes]).tolist()
    if offsets[-1] != len(data):
        raise ValueError("malformed rank message: array sizes do not add up to its length")
    body = [data[offsets[i]:offsets[i + 1]] for i in range(len(sizes))]
    return _unpack(head["value"], body)


def _unpack(obj: Any, body: list[bytes]) -> Any:
    if isinstance(obj, list):
        return [_unpack(x, body) for x in obj]
    if isinstance(obj, dict):
        if _ARRAY_KEY not in obj:
            return {k: _unpack(v, body) for k, v in obj.items()}
        dtype, shape = str(obj["dtype"]), tuple(int(s) for s in obj["shape"])
        if dtype not in _DTYPES:
            raise ValueError(f"malformed rank message: array dtype {dtype!r} is not allowed")
        raw = body[int(obj[_ARRAY_KEY])]
        if np.dtype(dtype).itemsize * math.prod(shape) != len(raw):
            raise ValueError(f"malformed rank message: {len(raw)} bytes for an array of shape {shape}")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(np.dtype(dtype).newbyteorder("="))
    return obj


def _to_tensor(data: bytes, size: int):
    import torch

    t = torch.zeros(size, dtype=torch.uint8)
    if data:
        t[:len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return t


def broadcast_json(obj: Any, src: int = 0, group=None) -> Any:
    """Rank ``src``'s ``obj`` on every rank (the others pass anything, e.g. None): length, then bytes.
    Every rank, ``src`` included, gets the decoded copy, so all see the same types (lists, not tuples)."""
    import torch
    import torch.distributed as dist

    mine = encode(obj) if dist.get_rank(group) == src else b""
    length = torch.tensor([len(mine)], dtype=torch.int64)
    dist.broadcast(length, src=src, group=group)
    buf = _to_tensor(mine, int(length.item()))
    dist.broadcast(buf, src=src, group=group)
    return decode(buf.numpy().tobytes())


def all_gather_json(obj: Any, group=None) -> list:
    """Every rank's ``obj``, by rank: lengths first, then the messages padded to the longest."""
    import torch
    import torch.distributed as dist

    world = dist.get_world_size(group)
    mine = encode(obj)
    lengths = [torch.zeros(1, dtype=torch.int64) for _ in range(world)]
    dist.all_gather(lengths, torch.tensor([len(mine)], dtype=torch.int64), group=group)
    sizes = [int(t.item()) for t in lengths]
    bufs = [torch.zeros(max(sizes), dtype=torch.uint8) for _ in range(world)]
    dist.all_gather(bufs, _to_tensor(mine, max(sizes)), group=group)
    return [decode(b[:n].numpy().tobytes()) for b, n in zip(bufs, sizes)]
