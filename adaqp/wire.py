"""Bytes on the wire: the one function every component uses to size a message.

A quantized row of width F at b bits is packed into ``ceil(F * b / 8)`` bytes, plus a per-row
header holding (lo, step) as two bfloat16 values (the reference sends (min, scale) the same way;
step = 1 / scale). Widths 16 and 32 are pass-through: bfloat16 / float32 rows with no header.
``adaqp.quant`` lays the bytes out; this module only counts them.
"""

from __future__ import annotations

import numpy as np

QUANT_BITS = (1, 2, 4, 8)
PASS_BITS = (16, 32)
ALL_BITS = QUANT_BITS + PASS_BITS
HEADER_NBYTES = 4  # (lo, step) as 2 x bfloat16 per quantized row


def check_bits(bits: int) -> int:
    from adaqp.errors import require

    require(int(bits) in ALL_BITS, f"bit-width {bits} not supported; choose from {ALL_BITS}")
    return int(bits)


def row_nbytes(width: int, bits: int) -> int:
    """Bytes one message row of ``width`` features occupies at ``bits`` bits, header included."""
    bits = check_bits(bits)
    if bits in PASS_BITS:
        return width * bits // 8
    return (width * bits + 7) // 8 + HEADER_NBYTES


def message_nbytes(rows, width: int, bits: int):
    """Bytes of a message of ``rows`` rows (int or array of ints) at a single bit-width."""
    return np.asarray(rows, dtype=np.int64) * row_nbytes(width, bits) if not np.isscalar(rows) \
        else int(rows) * row_nbytes(width, bits)
