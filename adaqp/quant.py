"""Stochastic integer quantization of message rows, bit packing and mixed-width message buffers.

Pure functions on torch tensors: no ``torch.distributed``, no Python loops over rows, and the same
code runs on CPU and CUDA tensors (pass a ``torch.Generator`` on the tensors' device).

Quantizing one row ``x`` (length F) to ``b`` bits, ``n = 2^b - 1`` levels above the lowest:

* ``lo`` = ``min(x)`` rounded *down* to a bfloat16 value, so ``lo <= x`` for every element;
* ``step`` = the smallest bfloat16 value with ``n * step >= max(x) - lo`` (checked exactly), so
  every ``t = (x - lo) / step`` lies in ``[0, n]``;
* ``q = floor(t) + [u < t - floor(t)]`` with ``u ~ U[0, 1)`` a counter-based draw
  (:mod:`adaqp.rng`: a function of a per-call key and the element's row and column), clamped to
  ``[0, n]`` (the clamp only guards float32 rounding of ``t``); this equals ``floor(t + u)`` but
  cannot round up a value that already lies on the grid;
* dequantize ``x_hat = lo + q * step``.

The quantizer uses exactly the bfloat16 ``(lo, step)`` that travel in the 4-byte header
(``wire.HEADER_NBYTES``), so it is unbiased, ``E[x_hat] = x``, up to float32 rounding (relative
~2^-24), with per-element variance ``step^2 p (1 - p) <= step^2 / 4``, and ``|x_hat - x| < step``.

A constant row whose value is bfloat16-representable (zeros, small integers, ...) gets
``step = 0`` and comes back exactly (``q = 0``, no division by zero). A constant row whose value
is *not* bfloat16-representable cannot be sent exactly with a bfloat16 header; it gets the
smallest positive step that covers it and stays unbiased, with an error below one bfloat16 ulp
of the value (instead of the biased round-to-nearest).

Inputs must be finite with ``|x|`` below bfloat16's maximum (~3.39e38) and a row range below
float32's maximum; :func:`quantize` checks this on the per-row headers (``check=True``, one
host synchronisation) and raises :class:`~adaqp.errors.AdaqpInputError` otherwise.

Bit packing: ``b`` bits per value, values little-endian within a byte (value ``j`` of a byte sits
at bits ``j*b .. j*b+b-1``), ``ceil(F*b/8)`` bytes per row, the last byte zero-padded.

Widths 16 and 32 are pass-through: bfloat16 (2 bytes/feature) and float32 (4 bytes/feature)
rows in native (little-endian) byte order, no header.

Message buffers of mixed widths (``pack_message`` / ``unpack_message``) live in
:mod:`adaqp.message` and are re-exported here.
"""

from __future__ import annotations

import numpy as np
import torch

from adaqp import rng as _rng
from adaqp import wire
from adaqp.errors import require

__all__ = [
    "bf16_next_down",
    "bf16_next_up",
    "bf16_round_down",
    "bf16_round_up",
    "dequantize",
    "message_layout",
    "message_plan",
    "message_size",
    "pack_bits",
    "pack_message",
    "packed_row_nbytes",
    "quantize",
    "row_headers",
    "unpack_bits",
    "unpack_message",
    "variance_bound",
    "variance_reference",
]


# ----------------------------------------------------------------------------------------------
# bfloat16 directed rounding


def bf16_next_up(c: torch.Tensor) -> torch.Tensor:
    """The next bfloat16 value above each element of the bfloat16 tensor ``c`` (finite inputs;
    ``+max`` goes to ``+inf``; both zeros go to the smallest positive subnormal)."""
    bits = c.view(torch.int16)
    stepped = torch.where(bits >= 0, bits + 1, bits - 1)  # sign bit clear: grow; set: shrink
    stepped = torch.where(c == 0, torch.ones_like(bits), stepped)
    return stepped.view(torch.bfloat16)


def bf16_next_down(c: torch.Tensor) -> torch.Tensor:
    """The next bfloat16 value below each element of the bfloat16 tensor ``c`` (``-max`` goes
    to ``-inf``, ``+inf`` to ``+max``; both zeros go to the smallest negative subnormal)."""
    bits = c.view(torch.int16)
    stepped = torch.where(bits >= 0, bits - 1, bits + 1)  # int16 view: +1 grows a negative's magnitude
    stepped = torch.where(c == 0, torch.full_like(bits, -32767), stepped)  # 0x8001
    return stepped.view(torch.bfloat16)


def bf16_round_down(x: torch.Tensor) -> torch.Tensor:
    """Largest bfloat16 value ``<= x``, elementwise (``x`` float32 or float64; NaN stays NaN;
    values below ``-max`` give ``-inf``)."""
    c = x.to(torch.bfloat16)  # nearest: one of the two bfloat16 neighbours of x
    return torch.where(c.to(x.dtype) > x, bf16_next_down(c), c)


def bf16_round_up(x: torch.Tensor) -> torch.Tensor:
    """Smallest bfloat16 value ``>= x``, elementwise (``x`` float32 or float64; NaN stays NaN;
    values above ``+max`` give ``+inf``)."""
    c = x.to(torch.bfloat16)
    return torch.where(c.to(x.dtype) < x, bf16_next_up(c), c)


def _covers(step: torch.Tensor, n: int, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Exactly whether ``lo + n * step >= hi`` (all float64 holding bfloat16/float32 values).

    ``n * step`` is exact (8-bit significands); the sum is compared exactly with TwoSum."""
    p = step * n
    s = p + lo
    bv = s - p
    e = (p - (s - bv)) + (lo - bv)  # p + lo == s + e exactly
    return (s > hi) | ((s == hi) & (e >= 0))


def row_headers(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-row ``(lo, step)`` as bfloat16 ``[R, 2]`` for quantizing ``x`` ``[R, F]`` to ``bits``.

    ``lo`` is ``min`` rounded down to bfloat16; ``step`` is the smallest bfloat16 value with
    ``lo + (2^bits - 1) * step >= max`` in exact arithmetic (0 for a row whose max equals a
    bfloat16 ``lo``). Header arithmetic runs in float64 (R-sized, cheap)."""
    n = (1 << bits) - 1
    mn, mx = torch.amin(x, dim=1), torch.amax(x, dim=1)  # (faster than aminmax on CPU)
    lo = bf16_round_down(mn)
    lo64, mx64 = lo.to(torch.float64), mx.to(torch.float64)
    c = bf16_round_up((mx64 - lo64) / n)  # within a bfloat16 ulp of the answer
    down = bf16_next_down(c).clamp_min(0)
    up = bf16_next_up(c)
    step = torch.where(
        _covers(down.to(torch.float64), n, lo64, mx64), down,
        torch.where(_covers(c.to(torch.float64), n, lo64, mx64), c, up))
    return torch.stack([lo, step], dim=1)


# ----------------------------------------------------------------------------------------------
# bit packing


def packed_row_nbytes(width: int, bits: int) -> int:
    """Payload bytes of one packed row (no header): ``ceil(width * bits / 8)``."""
    return (width * bits + 7) // 8


# Values of one packed byte travel as the bytes of one integer word (little-endian: value j in
# byte j); a few shift-or steps gather them into the low byte (pack) or spread them (unpack).
_WORD = {1: torch.int64, 2: torch.int32, 4: torch.int16}
_GATHER = {1: (7, 14, 28), 2: (6, 12), 4: (4,)}
_SPREAD = {  # (shift, mask) steps, inverse order of _GATHER
    1: ((28, 0x0000000F0000000F), (14, 0x0003000300030003), (7, 0x0101010101010101)),
    2: ((12, 0x000F000F), (6, 0x03030303)),
    4: ((4, 0x0F0F),),
}


def pack_bits(q: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack uint8 values ``q`` ``[R, F]`` (each ``< 2^bits``; not checked) into ``[R, ceil(F*bits/8)]``
    uint8, little-endian within a byte (value j of a byte at bits ``j*bits``), last byte zero-padded."""
    require(bits in wire.QUANT_BITS, f"pack_bits: bits must be one of {wire.QUANT_BITS}, got {bits}")
    require(q.dim() == 2 and q.dtype == torch.uint8, "pack_bits: q must be a 2-D uint8 tensor")
    rows, width = q.shape
    if bits == 8:
        return q.contiguous()
    if rows == 0:
        return torch.empty(0, packed_row_nbytes(width, bits), dtype=torch.uint8, device=q.device)
    per = 8 // bits
    nb = packed_row_nbytes(width, bits)
    if nb * per != width:
        padded = torch.zeros(rows, nb * per, dtype=torch.uint8, device=q.device)
        padded[:, :width] = q
        q = padded
    w = q.contiguous().view(_WORD[bits])  # [rows, nb]: one word per packed byte
    for shift in _GATHER[bits]:
        w = w | (w >> shift)
    return w.to(torch.uint8)  # integer casts keep the low byte (modular), the packed byte


def unpack_bits(packed: torch.Tensor, bits: int, width: int) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: ``[R, ceil(width*bits/8)]`` uint8 to ``[R, width]`` uint8."""
    require(bits in wire.QUANT_BITS, f"unpack_bits: bits must be one of {wire.QUANT_BITS}, got {bits}")
    nb = packed_row_nbytes(width, bits)
    require(packed.dim() == 2 and packed.dtype == torch.uint8 and packed.shape[1] == nb,
            f"unpack_bits: packed must be uint8 [R, {nb}] for width {width} at {bits} bits")
    rows = packed.shape[0]
    if bits == 8:
        return packed
    if rows == 0:
        return torch.empty(0, width, dtype=torch.uint8, device=packed.device)
    w = packed.to(_WORD[bits])
    for shift, mask in _SPREAD[bits]:
        w = (w | (w << shift)) & mask
    return w.view(torch.uint8).reshape(rows, nb * (8 // bits))[:, :width]


# ----------------------------------------------------------------------------------------------
# quantize / dequantize one bit-width


def as_rows(x: torch.Tensor, what: str) -> torch.Tensor:
    """``x`` as contiguous fp32 rows ``[R, F]``, after checking it is a 2-D float tensor (``what``
    names the caller in the error)."""
    require(isinstance(x, torch.Tensor) and x.dim() == 2, f"{what}: x must be a 2-D tensor [R, F]")
    require(x.shape[1] >= 1, f"{what}: feature width must be >= 1")
    require(x.is_floating_point(), f"{what}: x must be a floating-point tensor, got {x.dtype}")
    return x.to(torch.float32).contiguous()


def quantize(x: torch.Tensor, bits: int, generator=None, *, check: bool = True,
             row_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Stochastically quantize each row of ``x`` ``[R, F]`` to ``bits`` in {1, 2, 4, 8}.

    Returns ``(q_packed, header)``: uint8 ``[R, ceil(F*bits/8)]`` and bfloat16 ``[R, 2]`` holding
    ``(lo, step)``. ``generator`` gives the key of the counter-based draws (an
    :class:`adaqp.rng.KeyStream`, an int key, a ``torch.Generator`` or ``None``, see
    :func:`adaqp.rng.as_key`); ``row_ids`` (default ``0..R-1``) are the rows' counters, so a row
    draws the same numbers wherever it sits. ``check`` refuses non-finite rows (one host
    synchronisation)."""
    require(bits in wire.QUANT_BITS, f"quantize: bits must be one of {wire.QUANT_BITS}, got {bits}")
    x = as_rows(x, "quantize")
    key = _rng.as_key(generator)
    if row_ids is None:
        row_ids = torch.arange(x.shape[0], dtype=torch.int64, device=x.device)
    n = (1 << bits) - 1
    header = row_headers(x, bits)
    lo = header[:, 0:1].to(torch.float32)
    step = header[:, 1:2].to(torch.float32)
    if check and x.shape[0]:
        top = lo + step * n
        require(bool(torch.isfinite(lo).all() & torch.isfinite(top).all()),
                "quantize: rows must be finite, |x| below bfloat16 max and each row's range "
                "below float32 max")
    # step == 0 means every element equals lo: t = 0 exactly, no division by zero. The clamp
    # only guards float32 rounding of t; after it, floor(t) <= n, and floor(t) == n leaves no
    # fraction, so q = floor(t) + [u < frac(t)] stays in [0, n] (and its uint8 cannot wrap).
    t = torch.sub(x, lo).div_(torch.where(step > 0, step, torch.ones_like(step))).clamp_(0, n)
    q = t.to(torch.uint8)  # t >= 0: truncation is floor
    frac = t.frac_()  # t - trunc(t) = t - floor(t), exact
    u = _rng.uniform(key, row_ids, x.shape[1])
    q.add_(torch.lt(u, frac))
    return pack_bits(q, bits), header


def dequantize(q_packed: torch.Tensor, header: torch.Tensor, bits: int, width: int) -> torch.Tensor:
    """``lo + q * step`` as float32 ``[R, width]`` from :func:`quantize`'s output."""
    q = unpack_bits(q_packed, bits, width)
    require(header.shape == (q.shape[0], 2), "dequantize: header must be [R, 2]")
    lo = header[:, 0:1].to(torch.float32)
    step = header[:, 1:2].to(torch.float32)
    return q.to(torch.float32).mul_(step).add_(lo)  # q * step is exact (8-bit significands)


# ----------------------------------------------------------------------------------------------
# variance (one formula, one place; used by the bit-width solver)


def _levels(bits, like):
    """``2^b - 1`` for quantized widths and ``inf`` for pass-through, shaped like ``bits``."""
    if isinstance(bits, torch.Tensor):
        b = bits.to(torch.int64)
        ok = torch.zeros_like(b, dtype=torch.bool)
        for v in wire.ALL_BITS:
            ok |= b == v
        require(bool(ok.all()), f"bit-widths must be in {wire.ALL_BITS}")
        n = (2.0 ** b.clamp(max=8).to(torch.float64)) - 1
        n = torch.where(b > 8, torch.full_like(n, float("inf")), n)
        if isinstance(like, torch.Tensor):
            n = n.to(like.device, like.dtype if like.is_floating_point() else n.dtype)
        return n
    if np.ndim(bits) == 0:
        b = wire.check_bits(int(bits))
        return float("inf") if b in wire.PASS_BITS else float((1 << b) - 1)
    b = np.asarray(bits, dtype=np.int64)
    require(bool(np.isin(b, wire.ALL_BITS).all()), f"bit-widths must be in {wire.ALL_BITS}")
    return np.where(b > 8, np.inf, 2.0 ** np.minimum(b, 8) - 1)


def variance_reference(row_range, width: int, bits):
    """The reference's variance estimate of a quantized row: ``F * range^2 / (6 (2^b - 1)^2)``
    (``F step^2 / 6``: the bound's ``p (1 - p)`` averaged over a uniform fractional position).

    ``row_range`` (max - min) and ``bits`` are scalars, numpy arrays or torch tensors
    (broadcast). Pass-through widths 16/32 count as exact: 0."""
    n = _levels(bits, row_range)
    return width * row_range * row_range / (6.0 * n * n)


def variance_bound(row_range, width: int, bits):
    """Upper bound on the variance of a quantized row: ``F * step^2 / 4`` with
    ``step = range / (2^b - 1)`` (stochastic rounding onto 2^b levels spanning the row's range:
    each element's error is at most one step, with variance at most step^2 / 4). Pass-through widths 16/32 count as exact: 0
    (bfloat16's deterministic rounding error is ignored by the solver)."""
    n = _levels(bits, row_range)
    step = row_range / n
    return width * step * step / 4.0


_MESSAGE_NAMES = ("BACKENDS", "message_layout", "message_plan", "message_size", "pack_message",
                  "unpack_message", "use_fused")


def __getattr__(name: str):
    """Message buffers live in :mod:`adaqp.message` (which builds on this module); they are
    reachable here too, looked up on first use so neither import waits for the other."""
    if name in _MESSAGE_NAMES:
        from adaqp import message

        return getattr(message, name)
    raise AttributeError(f"module 'adaqp.quant' has no attribute {name!r}")
