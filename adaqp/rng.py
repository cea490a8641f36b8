"""Counter-based random numbers for stochastic rounding: the same draws on every backend.

The uniform draw for element ``(row, col)`` of a quantized message is a pure function of a 32-bit
``key`` and the pair, so the eager torch path (CPU or CUDA) and the fused Triton kernels
(``adaqp.quant_triton``) give bit-identical results, whatever the order in which elements are
visited, the grouping of rows by width, or the launch geometry:

* ``row_mix = hash32(row ^ key)``, one per row;
* ``col_mix = hash32(col + 0x9E3779B9)``, one per column (no key: the row mix carries it);
* ``u = (((row_mix ^ col_mix) * 0x7FEB352D) mod 2^32 >> 8) * 2^-24``, in ``[0, 1)`` on a 2^-24
  grid (exact in float32, so ``u < frac`` compares the same everywhere).

``hash32`` is a 32-bit integer finaliser (xor-shift / multiply, two rounds; constants from
C. Wellons' "lowbias32" search), a bijection of the 32-bit words. Rows and columns get the full
finaliser (R + F of them); each element gets one multiply of the two mixes, keeping the top 24
bits, which depend on every bit below them. Every draw is exactly uniform on its grid (the row
mix is uniform and the multiply by an odd constant is a bijection), and two draws of one row
are dependent only through the 2^popcount(col_mix_j ^ col_mix_k) carry patterns of the
multiply, about 2^16 of them. One multiply instead of a third finaliser keeps the eager CPU
path within about 1.6x of ``torch.rand``'s cost (the tests check unbiasedness and variance).

Keys come from :class:`KeyStream`, a host-side splitmix64 sequence: drawing a key never touches
the device (no synchronisation), and a stream seeded the same way replays the same keys.
"""

from __future__ import annotations

import torch

MASK32 = 0xFFFFFFFF
GOLDEN32 = 0x9E3779B9
HASH_C1 = 0x7FEB352D
HASH_C2 = 0x846CA68B
U24 = 2.0 ** -24

__all__ = ["KeyStream", "as_key", "hash32", "uniform", "HASH_C1", "HASH_C2", "GOLDEN32"]


class KeyStream:
    """A seeded sequence of 32-bit keys (splitmix64), one per quantization call."""

    def __init__(self, seed: int = 0) -> None:
        self.manual_seed(seed)

    def manual_seed(self, seed: int) -> "KeyStream":
        self._state = int(seed) & 0xFFFFFFFFFFFFFFFF
        return self

    def get_state(self) -> torch.Tensor:
        """The state as a one-element int64 tensor (checkpoints load it with weights_only)."""
        v = self._state
        return torch.tensor([v - (1 << 64) if v >= 1 << 63 else v], dtype=torch.int64)

    def set_state(self, state: torch.Tensor) -> None:
        self._state = int(state.reshape(-1)[0]) & 0xFFFFFFFFFFFFFFFF

    def next_key(self) -> int:
        self._state = (self._state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = self._state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return (z ^ (z >> 31)) & MASK32


def as_key(rng) -> int:
    """One 32-bit key from ``rng``: a :class:`KeyStream` (advances it), an int (used as the key),
    a ``torch.Generator`` (draws from it; on CUDA that is one synchronisation) or ``None``
    (torch's default CPU generator)."""
    if isinstance(rng, KeyStream):
        return rng.next_key()
    if isinstance(rng, int) and not isinstance(rng, bool):
        return rng & MASK32
    if rng is None or isinstance(rng, torch.Generator):
        device = rng.device if rng is not None else "cpu"
        return int(torch.randint(0, 1 << 32, (1,), generator=rng, dtype=torch.int64, device=device))
    raise TypeError(f"random source must be a KeyStream, an int key, a torch.Generator or None, not {type(rng).__name__}")


def _mulmod32(x: torch.Tensor, c: int) -> torch.Tensor:
    """``(x * c) mod 2^32`` for int64 ``x`` holding 32-bit words, without int64 overflow (the
    constant is split in 16-bit halves, every partial product stays below 2^48)."""
    lo = x * (c & 0xFFFF)
    hi = (x * (c >> 16)).bitwise_and_(0xFFFF).bitwise_left_shift_(16)
    return lo.add_(hi).bitwise_and_(MASK32)


def hash32(x: torch.Tensor) -> torch.Tensor:
    """The finaliser on int64 tensors holding 32-bit words (returns a new tensor)."""
    x = x ^ (x >> 16)
    x = _mulmod32(x, HASH_C1)
    x ^= x >> 15
    x = _mulmod32(x, HASH_C2)
    x ^= x >> 16
    return x


def uniform(key: int, row_ids: torch.Tensor, width: int) -> torch.Tensor:
    """float32 ``[R, width]`` draws in ``[0, 1)`` for rows ``row_ids`` (int64 ``[R]``) and columns
    ``0 .. width-1`` (the reference the Triton kernels reproduce bit for bit)."""
    device = row_ids.device
    rows = hash32((row_ids.to(torch.int64) & MASK32) ^ (int(key) & MASK32))
    cols = hash32((torch.arange(width, dtype=torch.int64, device=device) + GOLDEN32) & MASK32)
    # HASH_C1 < 2^31 and the xor < 2^32: the product stays below 2^63, no overflow
    h = (rows[:, None] ^ cols[None, :]).mul_(HASH_C1).bitwise_and_(MASK32)
    return (h >> 8).to(torch.float32).mul_(U24)
