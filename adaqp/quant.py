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

Backends: this module is the eager torch code (CPU and CUDA). On CUDA, :func:`pack_message` and
:func:`unpack_message` run the fused Triton kernels of :mod:`adaqp.quant_triton` instead when
Triton is installed (``backend="auto"``; ``ADAQP_QUANT_BACKEND=torch`` turns them off). Both give
bit-identical buffers for the same key, because the draws are counter-based.

Widths 16 and 32 are pass-through: bfloat16 (2 bytes/feature) and float32 (4 bytes/feature)
rows in native (little-endian) byte order, no header.

Message buffer (:func:`pack_message`): rows are grouped by bit-width in ascending order of
width, stable (original row order within a width). Each group is laid out as
``[packed data of its rows, row after row][their headers, (lo, step) bfloat16 per row]``; pass-
through groups have no headers. Its length is ``sum(wire.row_nbytes(F, b) for each row)``.
"""

from __future__ import annotations

import os

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


def _as_rows(x: torch.Tensor, what: str) -> torch.Tensor:
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
    x = _as_rows(x, "quantize")
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
# mixed-width message buffers


def _bits_counts(row_bits: torch.Tensor) -> list[int]:
    """Rows per width value (index = width), one host synchronisation; refuses unknown widths."""
    require(isinstance(row_bits, torch.Tensor) and row_bits.dim() == 1
            and not row_bits.is_floating_point(), "row_bits must be a 1-D integer tensor")
    counts = torch.bincount(row_bits.to(torch.int64).clamp(0, 33), minlength=34).tolist()
    bad = [b for b, c in enumerate(counts) if c and b not in wire.ALL_BITS]
    require(not bad, f"row_bits holds unsupported bit-widths; choose from {wire.ALL_BITS}")
    return counts


def message_layout(row_bits: torch.Tensor, width: int) -> list[tuple[int, int, int, int]]:
    """Groups of a message, in buffer order: ``(bits, first_sorted_row, rows, byte_offset)``.

    Sorted rows are ``row_bits.argsort(stable=True)``; the group's data starts at
    ``byte_offset``, its headers (quantized widths) right after its data."""
    counts = _bits_counts(row_bits)
    layout, row, off = [], 0, 0
    for b in sorted(wire.ALL_BITS):
        if counts[b]:
            layout.append((b, row, counts[b], off))
            row += counts[b]
            off += counts[b] * wire.row_nbytes(width, b)
    return layout


def message_plan(row_bits: torch.Tensor, width: int, device=None) -> tuple[list, torch.Tensor | None]:
    """``(layout, order)`` of a message: :func:`message_layout` and the stable sort of the rows by
    width on ``device`` (None for a single width). Sizes are fixed per BitPlan, so callers that
    send the same widths every epoch build this once and pass it as ``plan=``: encoding and
    decoding then never wait for the device (counting rows per width is a host synchronisation,
    which stalls most when several processes time-share one GPU)."""
    layout = message_layout(row_bits, width)
    dev = device if device is not None else row_bits.device
    order = torch.argsort(row_bits.to(dev), stable=True) if len(layout) > 1 else None
    return layout, order


def message_size(row_bits: torch.Tensor, width: int) -> int:
    """Bytes of the message :func:`pack_message` builds for these row widths."""
    return sum(r * wire.row_nbytes(width, b) for b, _, r, _ in message_layout(row_bits, width))


BACKENDS = ("auto", "torch", "triton")


def use_fused(device: torch.device, backend: str = "auto") -> bool:
    """Whether messages on ``device`` go through the fused Triton kernels: ``"triton"`` forces
    them (the interpreter runs them on CPU tensors when ``TRITON_INTERPRET=1``), ``"torch"``
    never; ``"auto"`` on CUDA when Triton imports, unless ``ADAQP_QUANT_BACKEND=torch``."""
    require(backend in BACKENDS, f"quantization backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        backend = os.environ.get("ADAQP_QUANT_BACKEND", "auto")
        require(backend in BACKENDS, f"ADAQP_QUANT_BACKEND must be one of {BACKENDS}, got {backend!r}")
        if backend == "auto":
            if device.type != "cuda":
                return False
            from adaqp import quant_triton

            return quant_triton.available()
    if backend == "triton":
        from adaqp import quant_triton

        require(quant_triton.available(), "the triton quantization backend needs the triton package")
    return backend == "triton"


def pack_message(x: torch.Tensor, row_bits: torch.Tensor, generator=None, *, check: bool = True,
                 out: torch.Tensor | None = None, index: torch.Tensor | None = None,
                 backend: str = "auto", plan: tuple | None = None) -> torch.Tensor:
    """Encode ``x`` ``[R, F]`` with one bit-width per row (``row_bits`` ``[R]``, values in
    ``wire.ALL_BITS``) into one uint8 buffer; see the module docstring for the layout.

    ``index`` (int64 ``[R]``): the message is ``x[index]`` (gathered inside the kernel on the
    fused path). One key is drawn from ``generator`` per message; element ``(i, j)`` of the
    message uses counter ``(i, j)``, so the buffer does not depend on the backend. ``out``: write
    into this preallocated buffer (exactly the message's size). One host synchronisation (group
    sizes), plus one per quantized group if ``check``."""
    fused = use_fused(x.device, backend)
    if index is not None and not fused:
        x, index = x.index_select(0, index), None
    x = _as_rows(x, "pack_message")
    n_rows = x.shape[0] if index is None else index.shape[0]
    require(row_bits.shape == (n_rows,), "pack_message: row_bits must be [R] for a message of R rows")
    width = x.shape[1]
    layout, order = plan if plan is not None else message_plan(row_bits, width, x.device)
    total = sum(r * wire.row_nbytes(width, b) for b, _, r, _ in layout)
    if out is not None:  # the caller's reused send buffer: no allocation per message
        require(out.dtype == torch.uint8 and out.dim() == 1 and out.numel() == total,
                f"pack_message: out must be a 1-D uint8 tensor of {total} bytes")
    buf = out if out is not None else torch.empty(total, dtype=torch.uint8, device=x.device)
    key = _rng.as_key(generator) if any(b in wire.QUANT_BITS for b, *_ in layout) else 0
    for b, first, rows, off in layout:
        ids = (order[first:first + rows] if order is not None
               else torch.arange(rows, dtype=torch.int64, device=x.device))
        if b in wire.PASS_BITS:
            xg = x.index_select(0, ids if index is None else index[ids])
            dt = torch.float32 if b == 32 else torch.bfloat16
            buf[off:off + rows * width * b // 8] = xg.to(dt).reshape(-1).view(torch.uint8)
        elif fused:
            from adaqp import quant_triton

            src = ids if index is None else index[ids]
            seg = buf[off:off + rows * wire.row_nbytes(width, b)]
            if check:  # the kernel's min/max skip NaN: look at the rows themselves first
                require(bool(torch.isfinite(x.index_select(0, src)).all()), "quantize: rows must be finite")
            quant_triton.quantize_pack(x, src, ids, b, key, seg)
            if check:
                _check_headers(_view(seg[rows * packed_row_nbytes(width, b):], torch.bfloat16), b)
        else:
            q, header = quantize(x.index_select(0, ids) if order is not None else x, b, key,
                                 check=check, row_ids=ids)
            nd = q.numel()
            buf[off:off + nd] = q.reshape(-1)
            buf[off + nd:off + nd + rows * wire.HEADER_NBYTES] = header.reshape(-1).view(torch.uint8)
    return buf


def _check_headers(header: torch.Tensor, bits: int) -> None:
    h = header.reshape(-1, 2).to(torch.float32)
    top = h[:, 0] + h[:, 1] * ((1 << bits) - 1)
    require(bool(torch.isfinite(h[:, 0]).all() & torch.isfinite(top).all()),
            "quantize: rows must be finite, |x| below bfloat16 max and each row's range below float32 max")


def _view(data: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Reinterpret a 1-D uint8 slice as ``dtype``, copying it first when it is not aligned."""
    if data.storage_offset() % torch.empty(0, dtype=dtype).element_size():
        data = data.clone()
    return data.view(dtype)


def unpack_message(buf: torch.Tensor, row_bits: torch.Tensor, width: int, *,
                   backend: str = "auto", plan: tuple | None = None) -> torch.Tensor:
    """Decode :func:`pack_message`'s buffer back to float32 ``[R, width]`` in the original row order."""
    require(isinstance(buf, torch.Tensor) and buf.dim() == 1 and buf.dtype == torch.uint8,
            "unpack_message: buf must be a 1-D uint8 tensor")
    require(int(width) >= 1, "unpack_message: width must be >= 1")
    layout, order = plan if plan is not None else message_plan(row_bits, width, buf.device)
    total = sum(r * wire.row_nbytes(width, b) for b, _, r, _ in layout)
    require(buf.numel() == total,
            f"unpack_message: buffer holds {buf.numel()} bytes, the layout needs {total}")
    fused = use_fused(buf.device, backend)
    out = torch.empty(row_bits.shape[0], width, dtype=torch.float32, device=buf.device)
    for b, first, rows, off in layout:
        seg = buf[off:off + rows * wire.row_nbytes(width, b)]
        if b in wire.QUANT_BITS and fused:
            from adaqp import quant_triton

            ids = (order[first:first + rows] if order is not None
                   else torch.arange(rows, dtype=torch.int64, device=buf.device))
            quant_triton.unpack_dequantize(seg, rows, b, width, out, ids)
            continue
        if b in wire.PASS_BITS:
            group = _view(seg, torch.float32 if b == 32 else torch.bfloat16).reshape(rows, width)
        else:
            nb = packed_row_nbytes(width, b)
            header = _view(seg[rows * nb:], torch.bfloat16).reshape(rows, 2)
            group = dequantize(seg[:rows * nb].reshape(rows, nb), header, b, width)
        if order is None:
            out.copy_(group)
        else:
            out.index_copy_(0, order[first:first + rows], group.to(torch.float32))
    return out


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
    ``step = range / (2^b - 1)`` (DESIGN.md). Pass-through widths 16/32 count as exact: 0
    (bfloat16's deterministic rounding error is ignored by the solver)."""
    n = _levels(bits, row_range)
    step = row_range / n
    return width * step * step / 4.0
