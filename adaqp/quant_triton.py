"""Fused Triton kernels for one width group of a message: quantize+pack and unpack+dequantize.

Each program owns ``BLOCK_R`` whole rows (a row's min/max must be known before any of its values
is rounded), so x is read once and the packed bytes and the header are written once: one pass
over memory instead of the eager path's dozen. The arithmetic reproduces :mod:`adaqp.quant`
bit for bit (tests compare buffers byte by byte, with the Triton interpreter on CPU and on a GPU):

* ``lo``: the largest bfloat16 ``<= min`` (truncate the float32 bits; a negative value that is
  not already a bfloat16 moves one bfloat16 step away from zero);
* ``step``: ``c`` = the smallest bfloat16 ``>=`` the float64 quotient ``(max - lo) / n``, then the
  first of ``(c - ulp, c, c + ulp)`` that covers ``max`` in exact arithmetic (TwoSum), as
  :func:`adaqp.quant.row_headers` does;
* ``t = (x - lo) / step`` with IEEE division (``div_rn``: Triton's default float32 division is
  approximate), ``q = floor(t) + [u < t - floor(t)]`` with the counter-based ``u`` of
  :mod:`adaqp.rng`;
* dequantize ``lo + q * step`` (``q * step`` is exact, so a fused multiply-add rounds the same).

Importing this module needs no GPU; the kernels run on CUDA tensors, or on CPU tensors under
``TRITON_INTERPRET=1`` (set before Triton is imported), which is how CPU tests check them.
"""

from __future__ import annotations

import torch

from adaqp import wire
from adaqp.rng import GOLDEN32, HASH_C1, HASH_C2

try:  # Triton is optional: the eager torch code in adaqp.quant is the fallback
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised where Triton is absent
    triton = None

__all__ = ["available", "quantize_pack", "unpack_dequantize", "tile"]

# values per program and warps: `bench_quant --tune` on an H200 (results/h200-2026-11-26-run2/tune.csv,
# 10^6 rows) put 2048 x 4 ahead of the first guess, 4096 x 4, for 2- and 4-bit quantizing at
# widths 64-1024 (0.45-0.54 of copy bandwidth against 0.39-0.55) and 4-bit dequantizing at
# width 256 (0.69 against 0.41); 8 warps and packing 8 values per thread were never better
_TILE_ELEMENTS = 2048
_NUM_WARPS = 4


def available() -> bool:
    return triton is not None


def tile(width: int, elements: int | None = None) -> tuple[int, int]:
    """(BLOCK_R, BLOCK_F): whole rows per program (about ``elements`` values, a power of two),
    the row padded to a power of two (>= 8, so a packed byte's values never straddle the
    padding). Results do not depend on the tile: every row is computed on its own."""
    block_f = max(8, 1 << (int(width) - 1).bit_length())
    return max(1, (elements or _TILE_ELEMENTS) // block_f), block_f


if triton is not None:
    _C1 = tl.constexpr(HASH_C1)
    _C2 = tl.constexpr(HASH_C2)
    _GOLDEN = tl.constexpr(GOLDEN32)

    @triton.jit
    def _hash32(x):
        x ^= x >> 16
        x *= tl.full([], _C1, tl.uint32)
        x ^= x >> 15
        x *= tl.full([], _C2, tl.uint32)
        x ^= x >> 16
        return x

    @triton.jit
    def _f32_bits(v):
        return v.to(tl.uint32, bitcast=True)

    @triton.jit
    def _bits_f32(b):
        return b.to(tl.float32, bitcast=True)

    @triton.jit
    def _covers(step_bits, n, lo64, hi64):
        """Exactly whether lo + n * step >= hi (float64 holding bfloat16/float32 values)."""
        p = _bits_f32(step_bits).to(tl.float64) * n
        s = p + lo64
        bv = s - p
        e = (p - (s - bv)) + (lo64 - bv)
        return (s > hi64) | ((s == hi64) & (e >= 0))

    @triton.jit
    def _header(mn, mx, N: tl.constexpr):
        """Per-row (lo, step) as float32 bit patterns with zero low halves (bfloat16 values)."""
        b = _f32_bits(mn)
        tr = b & 0xFFFF0000
        lo_bits = tl.where((tr == b) | ((b >> 31) == 0), tr, tr + 0x10000)
        lo64 = _bits_f32(lo_bits).to(tl.float64)
        hi64 = mx.to(tl.float64)
        d = (hi64 - lo64) / N  # float64 division is IEEE-rounded in Triton
        f = d.to(tl.float32)
        fb = _f32_bits(f)
        fb = tl.where(f.to(tl.float64) < d, fb + 1, fb)  # ceil to float32 (d >= 0)
        cr = fb & 0xFFFF0000
        c = tl.where(cr == fb, cr, cr + 0x10000)  # ceil to bfloat16
        down = tl.where(c == 0, c, c - 0x10000)
        up = c + 0x10000
        step_bits = tl.where(_covers(down, N, lo64, hi64), down,
                             tl.where(_covers(c, N, lo64, hi64), c, up))
        return lo_bits, step_bits

    @triton.jit
    def _round(x, lo, step, row_mix, col_mix, N: tl.constexpr):
        """q = floor(t) + [u < frac(t)], t = (x - lo) / step clamped to [0, N] (broadcasting)."""
        safe = tl.where(step > 0, step, 1.0)
        t = tl.math.div_rn(x - lo, tl.broadcast_to(safe, x.shape))
        t = tl.minimum(tl.maximum(t, 0.0), N * 1.0)
        fl = tl.floor(t)
        # counter-based draws (adaqp.rng.uniform): row mix ^ column mix, one multiply
        h = (row_mix ^ col_mix) * tl.full([], _C1, tl.uint32)
        u = (h >> 8).to(tl.float32) * (1.0 / 16777216.0)
        return fl.to(tl.uint32) + (u < (t - fl)).to(tl.uint32)

    @triton.jit
    def _col_mix(col):
        return _hash32(col.to(tl.uint32) + tl.full([], _GOLDEN, tl.uint32))

    @triton.jit
    def _row_header(x, m, rmask, N: tl.constexpr):
        """(lo, step) bit patterns of each row of the 2-D tile ``x`` (``m``: valid elements)."""
        mn = tl.min(tl.where(m, x, float("inf")), axis=1)
        mx = tl.max(tl.where(m, x, -float("inf")), axis=1)
        mn = tl.where(rmask, mn, 0.0)  # rows past the end: keep their (unused) header finite
        mx = tl.where(rmask, mx, 0.0)
        return _header(mn, mx, N)

    @triton.jit(do_not_specialize=["rows", "key"])
    def _quantize_pack_kernel(x_ptr, src_ptr, ids_ptr, out_ptr, rows, width, x_stride, key, NB,
                              BITS: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_F: tl.constexpr,
                              GROUP: tl.constexpr):
        N: tl.constexpr = (1 << BITS) - 1
        r = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
        rmask = r < rows
        r64 = r.to(tl.int64)
        src = tl.load(src_ptr + r, mask=rmask, other=0).to(tl.int64)
        ids = tl.load(ids_ptr + r, mask=rmask, other=0).to(tl.uint32)
        row_mix = _hash32(ids ^ key.to(tl.uint32))
        if BITS == 8:  # one value per byte: a 2-D tile [rows, columns]
            c = tl.arange(0, BLOCK_F)
            m = rmask[:, None] & (c[None, :] < width)
            x = tl.load(x_ptr + src[:, None] * x_stride + c[None, :], mask=m, other=0.0)
            lo_bits, step_bits = _row_header(x, m, rmask, N)
            q = _round(x, _bits_f32(lo_bits)[:, None], _bits_f32(step_bits)[:, None],
                       row_mix[:, None], _col_mix(c)[None, :], N)
            tl.store(out_ptr + r64[:, None] * NB + c[None, :], q.to(tl.uint8), mask=m)
        else:  # a 3-D tile [rows, groups, values of a group]: each group's values stay in one
            # thread; a group is GROUP values = BPG whole bytes (GROUP = PER: one byte; more
            # values per group load wider vectors at 4 bits, a choice for `bench_quant --tune`)
            BPG: tl.constexpr = GROUP * BITS // 8
            j = tl.arange(0, BLOCK_F // GROUP)
            k = tl.arange(0, GROUP)
            col = j[:, None] * GROUP + k[None, :]
            m = rmask[:, None, None] & (col < width)[None, :, :]
            x = tl.load(x_ptr + src[:, None, None] * x_stride + col[None, :, :], mask=m, other=0.0)
            mn = tl.min(tl.min(tl.where(m, x, float("inf")), axis=2), axis=1)
            mx = tl.max(tl.max(tl.where(m, x, -float("inf")), axis=2), axis=1)
            lo_bits, step_bits = _header(tl.where(rmask, mn, 0.0), tl.where(rmask, mx, 0.0), N)
            q = _round(x, _bits_f32(lo_bits)[:, None, None], _bits_f32(step_bits)[:, None, None],
                       row_mix[:, None, None], _col_mix(col)[None, :, :], N)
            q = tl.where(m, q, 0)  # padding values pack as zero bits
            word = tl.sum(q << (k.to(tl.uint32) * BITS)[None, None, :], axis=2)  # little-endian bytes
            for b in tl.static_range(BPG):
                pos = j * BPG + b
                tl.store(out_ptr + r64[:, None] * NB + pos[None, :], ((word >> (8 * b)) & 0xFF).to(tl.uint8),
                         mask=rmask[:, None] & (pos[None, :] < NB))
        hdr = out_ptr + rows.to(tl.int64) * NB + r64 * 4  # headers follow the group's data
        lo16, st16 = lo_bits >> 16, step_bits >> 16
        tl.store(hdr, (lo16 & 0xFF).to(tl.uint8), mask=rmask)
        tl.store(hdr + 1, (lo16 >> 8).to(tl.uint8), mask=rmask)
        tl.store(hdr + 2, (st16 & 0xFF).to(tl.uint8), mask=rmask)
        tl.store(hdr + 3, (st16 >> 8).to(tl.uint8), mask=rmask)

    @triton.jit(do_not_specialize=["rows"])
    def _unpack_dequantize_kernel(buf_ptr, out_ptr, dst_ptr, rows, width, NB,
                                  BITS: tl.constexpr,
                                  BLOCK_R: tl.constexpr, BLOCK_F: tl.constexpr):
        PER: tl.constexpr = 8 // BITS
        MASK: tl.constexpr = (1 << BITS) - 1
        r = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
        rmask = r < rows
        r64 = r.to(tl.int64)
        hdr = buf_ptr + rows.to(tl.int64) * NB + r64 * 4
        b0 = tl.load(hdr, mask=rmask, other=0).to(tl.uint32)
        b1 = tl.load(hdr + 1, mask=rmask, other=0).to(tl.uint32)
        b2 = tl.load(hdr + 2, mask=rmask, other=0).to(tl.uint32)
        b3 = tl.load(hdr + 3, mask=rmask, other=0).to(tl.uint32)
        lo = _bits_f32((b0 | (b1 << 8)) << 16)
        step = _bits_f32((b2 | (b3 << 8)) << 16)
        dst = tl.load(dst_ptr + r, mask=rmask, other=0).to(tl.int64)
        # a 2-D tile for every width: each value loads its byte (neighbours share it through
        # L1). Measured on an H200 this beat spreading a 3-D [rows, bytes, values] tile, which
        # fell to 0.13-0.27 of copy bandwidth at 4 bits for widths 64-256 (kernels-v2.csv)
        c = tl.arange(0, BLOCK_F)
        m = rmask[:, None] & (c[None, :] < width)
        byte = tl.load(buf_ptr + r64[:, None] * NB + (c // PER)[None, :], mask=m, other=0).to(tl.uint32)
        q = (byte >> ((c % PER) * BITS).to(tl.uint32)[None, :]) & MASK
        x = q.to(tl.float32) * step[:, None] + lo[:, None]
        tl.store(out_ptr + dst[:, None] * width + c[None, :], x, mask=m)


def quantize_pack(x: torch.Tensor, src_rows: torch.Tensor, row_ids: torch.Tensor, bits: int,
                  key: int, out: torch.Tensor, tile_elements: int | None = None,
                  num_warps: int | None = None, group_values: int | None = None) -> None:
    """Quantize rows ``x[src_rows]`` (float32 ``[*, F]``, unit column stride) to ``bits`` with
    counters ``row_ids`` and write ``[packed rows][headers]`` into the uint8 ``out``.
    ``tile_elements`` / ``num_warps`` / ``group_values`` (values a thread packs together, at least
    one byte's, at most 32 bits): launch shape and layout, defaults above; for tuning only."""
    rows, width = int(src_rows.shape[0]), int(x.shape[1])
    nb = (width * bits + 7) // 8
    assert bits in wire.QUANT_BITS and out.numel() == rows * (nb + wire.HEADER_NBYTES)
    assert x.dtype == torch.float32 and x.stride(1) == 1
    if rows == 0:
        return
    block_r, block_f = tile(width, tile_elements)
    grid = (triton.cdiv(rows, block_r),)
    per = 8 // bits if bits < 8 else 1
    group = max(per, group_values or per)
    assert group & (group - 1) == 0 and group * bits <= 32 and group <= block_f, "values per group"
    _quantize_pack_kernel[grid](x, src_rows, row_ids, out, rows, width, x.stride(0), int(key), nb,
                                BITS=bits, BLOCK_R=block_r, BLOCK_F=block_f, GROUP=group,
                                num_warps=num_warps or _NUM_WARPS)


def unpack_dequantize(seg: torch.Tensor, rows: int, bits: int, width: int, out: torch.Tensor,
                      dst_rows: torch.Tensor, tile_elements: int | None = None,
                      num_warps: int | None = None) -> None:
    """Decode one width group (``[packed rows][headers]`` in the uint8 ``seg``) into rows
    ``dst_rows`` of the float32 ``out`` ``[*, width]`` (contiguous)."""
    nb = (width * bits + 7) // 8
    assert seg.numel() == rows * (nb + wire.HEADER_NBYTES) and out.is_contiguous()
    if rows == 0:
        return
    block_r, block_f = tile(width, tile_elements)
    grid = (triton.cdiv(rows, block_r),)
    _unpack_dequantize_kernel[grid](seg, out, dst_rows, rows, width, nb, BITS=bits, BLOCK_R=block_r,
                                    BLOCK_F=block_f, num_warps=num_warps or _NUM_WARPS)
