"""Peak bytes of live tensor storages over a block of torch code, counted exactly (any device).

A dispatch mode sees every op's outputs: a storage none of the op's inputs share is a new
allocation, counted until the last tensor on it is collected. Views and in-place results of
tensors made outside the block are not counted; their storages were there before."""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class LiveBytes(TorchDispatchMode):
    """``with LiveBytes() as m: ...``; then ``m.peak`` bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = 0
        self._refs: dict[int, list[int]] = {}  # storage pointer -> [tensors on it, nbytes]

    def _drop(self, key: int) -> None:
        ref = self._refs[key]
        ref[0] -= 1
        if ref[0] == 0:
            self.live -= ref[1]
            del self._refs[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {s.data_ptr() for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)
                  for s in _storages(t)}
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor):
                continue
            for storage in _storages(t):
                key = storage.data_ptr()
                if key in self._refs:
                    self._refs[key][0] += 1
                elif key in inputs or storage.nbytes() == 0:
                    continue
                else:
                    self._refs[key] = [1, storage.nbytes()]
                    self.live += storage.nbytes()
                    self.peak = max(self.peak, self.live)
                weakref.finalize(t, self._drop, key)
        return out


def _storages(t: torch.Tensor) -> list:
    """The storages a tensor holds: one if strided, its index and value arrays if sparse."""
    if t.layout == torch.strided:
        return [t.untyped_storage()]
    if t.layout == torch.sparse_csr:
        parts = (t.crow_indices(), t.col_indices(), t.values())
    elif t.layout == torch.sparse_coo:
        parts = (t._indices(), t._values())
    else:
        return []
    return [p.untyped_storage() for p in parts]
