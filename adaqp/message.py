"""Message buffers of mixed bit-widths: one uint8 buffer per (sender, receiver) message.

Message buffer (:func:`pack_message`): rows are grouped by bit-width in ascending order of
width, stable (original row order within a width). Each group is laid out as
``[packed data of its rows, row after row][their headers, (lo, step) bfloat16 per row]``; pass-
through groups have no headers. Its length is ``sum(wire.row_nbytes(F, b) for each row)``.

Backends: this module is the eager torch code (CPU and CUDA). On CUDA, :func:`pack_message` and
:func:`unpack_message` run the fused Triton kernels of :mod:`adaqp.quant_triton` instead when
Triton is installed (``backend="auto"``; ``ADAQP_QUANT_BACKEND=torch`` turns them off). Both give
bit-identical buffers for the same key, because the draws are counter-based.
"""

from __future__ import annotations

import os

import torch

from adaqp import wire
from adaqp import rng as _rng
from adaqp.errors import require
from adaqp.quant import as_rows, dequantize, packed_row_nbytes, quantize


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


def message_plan(row_bits: torch.Tensor, width: int, device=None) -> tuple[list, tuple[torch.Tensor, ...]]:
    """``(layout, ids)`` of a message: :func:`message_layout`, and per group the positions of its
    rows in the message (on ``device``; the stable sort of the rows by width). Sizes are fixed
    per BitPlan, so callers that send the same widths every epoch build this once and pass it as
    ``plan=``: encoding and decoding then never wait for the device (counting rows per width is
    a host synchronisation, which stalls most when several processes time-share one GPU)."""
    layout = message_layout(row_bits, width)
    dev = device if device is not None else row_bits.device
    if len(layout) == 1:
        return layout, (torch.arange(layout[0][2], dtype=torch.int64, device=dev),)
    order = torch.argsort(row_bits.to(dev), stable=True)
    return layout, tuple(order[first:first + rows] for _, first, rows, _ in layout)


def _nbytes(layout: list, width: int) -> int:
    return sum(r * wire.row_nbytes(width, b) for b, _, r, _ in layout)


def plan_nbytes(plan: tuple, width: int) -> int:
    """Bytes of a message with this :func:`message_plan` (no device work)."""
    return _nbytes(plan[0], width)


def message_size(row_bits: torch.Tensor, width: int) -> int:
    """Bytes of the message :func:`pack_message` builds for these row widths."""
    return _nbytes(message_layout(row_bits, width), width)


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
    into this preallocated buffer (exactly the message's size). ``plan``: :func:`message_plan`'s
    result for these widths; without it, one host synchronisation (group sizes). Plus one per
    quantized group if ``check``."""
    fused = use_fused(x.device, backend)
    if index is not None and not fused:
        x, index = x.index_select(0, index), None
    x = as_rows(x, "pack_message")
    n_rows = x.shape[0] if index is None else index.shape[0]
    require(row_bits.shape == (n_rows,), "pack_message: row_bits must be [R] for a message of R rows")
    width = x.shape[1]
    layout, group_ids = plan if plan is not None else message_plan(row_bits, width, x.device)
    total = _nbytes(layout, width)
    if out is not None:  # the caller's reused send buffer: no allocation per message
        require(out.dtype == torch.uint8 and out.dim() == 1 and out.numel() == total,
                f"pack_message: out must be a 1-D uint8 tensor of {total} bytes")
    buf = out if out is not None else torch.empty(total, dtype=torch.uint8, device=x.device)
    key = _rng.as_key(generator) if any(b in wire.QUANT_BITS for b, *_ in layout) else 0
    for (b, _, rows, off), ids in zip(layout, group_ids):
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
            q, header = quantize(x.index_select(0, ids) if len(layout) > 1 else x, b, key,
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
    layout, group_ids = plan if plan is not None else message_plan(row_bits, width, buf.device)
    total = _nbytes(layout, width)
    require(buf.numel() == total,
            f"unpack_message: buffer holds {buf.numel()} bytes, the layout needs {total}")
    fused = use_fused(buf.device, backend)
    out = torch.empty(row_bits.shape[0], width, dtype=torch.float32, device=buf.device)
    for (b, _, rows, off), ids in zip(layout, group_ids):
        seg = buf[off:off + rows * wire.row_nbytes(width, b)]
        if b in wire.QUANT_BITS and fused:
            from adaqp import quant_triton

            quant_triton.unpack_dequantize(seg, rows, b, width, out, ids)
            continue
        if b in wire.PASS_BITS:
            group = _view(seg, torch.float32 if b == 32 else torch.bfloat16).reshape(rows, width)
        else:
            nb = packed_row_nbytes(width, b)
            header = _view(seg[rows * nb:], torch.bfloat16).reshape(rows, 2)
            group = dequantize(seg[:rows * nb].reshape(rows, nb), header, b, width)
        if len(layout) == 1:
            out.copy_(group)
        else:
            out.index_copy_(0, ids, group.to(torch.float32))
    return out


