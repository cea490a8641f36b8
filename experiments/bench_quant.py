"""Fused Triton quantize+pack / unpack+dequantize vs the eager torch path vs a device copy.

    python3 -m adaqp.experiments.bench_quant [--quick] [--out DIR]

For every (width, rows, bits) it times, with CUDA events (median of ``triton.testing.do_bench``):

* ``copy``: ``y.copy_(x)`` of the fp32 rows, the memory-bandwidth limit (bytes read + written);
* ``fused_q`` / ``eager_q``: quantize+pack one width group (``quant_triton.quantize_pack`` vs
  ``quant.quantize``, the eager code, with the same counter-based draws);
* ``fused_dq`` / ``eager_dq``: unpack+dequantize it back to fp32 rows;
* ``identical``: the fused kernels' bytes and decoded rows equal the eager path's on the first
  100k rows (a poisoned output buffer, so an unwritten byte shows).

Bandwidth counts the fewest bytes each must move: quantize reads ``4F`` and writes
``ceil(F b / 8) + 4`` per row, dequantize the reverse, the copy ``2 * 4F``. ``frac`` is a kernel's
bandwidth over the copy's (target >= 0.5 for the fused kernels). Inputs smaller than a few L2s are
rotated among several copies so the cache does not flatter them. Sizes that do not fit in memory
are skipped and say so (the eager path needs about 30 bytes per element).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from adaqp.io import write_csv, write_json

WIDTHS = (64, 128, 256, 512, 1024)
ROWS = (10_000, 100_000, 1_000_000, 10_000_000)
BITS = (2, 4, 8)
QUICK = dict(widths=(64, 256, 1024), rows=(10_000, 1_000_000, 10_000_000), bits=(2, 4, 8))
_ROTATE_NBYTES = 512 << 20  # rotate inputs until a set spans this much (H200 L2: 60 MB)
_EAGER_BYTES_PER_ELEMENT = 32


def _bench(fn, device: str) -> float:
    """Median seconds of ``fn()``."""
    if device == "cuda":
        import triton.testing

        return triton.testing.do_bench(fn, warmup=10, rep=60, return_mode="median") / 1e3
    fn()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _free_nbytes(device: str) -> int:
    return torch.cuda.mem_get_info()[0] if device == "cuda" else 8 << 30


def _cycle(items):
    state = {"i": 0}

    def nxt():
        state["i"] = (state["i"] + 1) % len(items)
        return items[state["i"]]
    return nxt


def _case(width: int, rows: int, bits: int, device: str) -> dict:
    from adaqp import quant, quant_triton, wire

    nb = quant.packed_row_nbytes(width, bits)
    x_nbytes, msg_nbytes = rows * width * 4, rows * (nb + wire.HEADER_NBYTES)
    row = dict(width=width, rows=rows, bits=bits, x_nbytes=x_nbytes, msg_nbytes=msg_nbytes)
    if 2 * x_nbytes + msg_nbytes > 0.8 * _free_nbytes(device):
        return {**row, "note": "skipped: does not fit in device memory"}
    copies = max(1, min(8, _ROTATE_NBYTES // max(1, x_nbytes)))
    xs = [torch.randn(rows, width, device=device) for _ in range(copies)]
    ids = torch.arange(rows, device=device)
    bufs = [torch.empty(msg_nbytes, dtype=torch.uint8, device=device) for _ in range(copies)]
    y = torch.empty(rows, width, device=device)
    for x, buf in zip(xs, bufs):
        quant_triton.quantize_pack(x, ids, ids, bits, 1234, buf)
    pairs = _cycle(list(zip(xs, bufs)))

    def fused_q():
        x, buf = pairs()
        quant_triton.quantize_pack(x, ids, ids, bits, 1234, buf)

    def fused_dq():
        _, buf = pairs()
        quant_triton.unpack_dequantize(buf, rows, bits, width, y, ids)

    row["identical"] = _identical(xs[0], bits, width)
    row["copy_s"] = _bench(lambda: y.copy_(pairs()[0]), device)
    row["fused_q_s"] = _bench(fused_q, device)
    row["fused_dq_s"] = _bench(fused_dq, device)
    if rows * width * _EAGER_BYTES_PER_ELEMENT < 0.8 * _free_nbytes(device) - 2 * x_nbytes:
        hdr = lambda b: b[rows * nb:].view(torch.bfloat16).view(rows, 2)  # noqa: E731
        row["eager_q_s"] = _bench(lambda: quant.quantize(pairs()[0], bits, 1234, check=False), device)
        row["eager_dq_s"] = _bench(
            lambda: quant.dequantize(bufs[0][:rows * nb].view(rows, nb), hdr(bufs[0]), bits, width), device)
    else:
        row["note"] = "eager skipped: its temporaries do not fit in device memory"
    return _rates(row)


def _identical(x: torch.Tensor, bits: int, width: int, max_rows: int = 100_000) -> bool:
    """Fused and eager give the same bytes (and the same decoded rows) on the first rows."""
    from adaqp import quant, quant_triton

    n = min(x.shape[0], max_rows)
    ids = torch.arange(n, device=x.device)
    q, header = quant.quantize(x[:n], bits, 99, check=False)
    ref = torch.cat([q.reshape(-1), header.reshape(-1).view(torch.uint8)])
    buf = torch.full_like(ref, 0xA5)  # poisoned: an unwritten byte shows
    quant_triton.quantize_pack(x, ids, ids, bits, 99, buf)
    y = torch.full((n, width), float("nan"), device=x.device)
    quant_triton.unpack_dequantize(buf, n, bits, width, y, ids)
    return bool(torch.equal(buf, ref)) and bool(torch.equal(y, quant.dequantize(q, header, bits, width)))


def _rates(row: dict) -> dict:
    moved = {"copy": 2 * row["x_nbytes"], "q": row["x_nbytes"] + row["msg_nbytes"],
             "dq": row["x_nbytes"] + row["msg_nbytes"]}
    row["copy_GBps"] = moved["copy"] / row["copy_s"] / 1e9
    for name in ("fused_q", "fused_dq", "eager_q", "eager_dq"):
        if f"{name}_s" in row:
            gbps = moved[name.split("_")[1]] / row[f"{name}_s"] / 1e9
            row[f"{name}_GBps"], row[f"{name}_frac"] = gbps, gbps / row["copy_GBps"]
    return row


def run_grid(quick: bool = False, device: str | None = None, widths=None, rows=None, bits=None,
             progress=print) -> list[dict]:
    """Every (width, rows, bits) case as a dict row (seconds, GB/s, fractions of copy)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    grid = QUICK if quick else dict(widths=WIDTHS, rows=ROWS, bits=BITS)
    widths, rows, bits = widths or grid["widths"], rows or grid["rows"], bits or grid["bits"]
    out = []
    for w in widths:
        for r in rows:
            for b in bits:
                try:
                    row = _case(w, r, b, device)
                except torch.cuda.OutOfMemoryError as e:  # noqa: PERF203 - a size too big for this card
                    row = dict(width=w, rows=r, bits=b, note=f"out of memory: {str(e).splitlines()[0]}")
                if device == "cuda":
                    torch.cuda.empty_cache()
                out.append(row)
                if progress:
                    progress(_line(row))
    return out


TUNE = dict(widths=(64, 256, 1024), rows=1_000_000, bits=(2, 4, 8), tiles=(2048, 4096, 8192), warps=(4, 8),
            groups=(None, 8))  # values one thread packs together (None: one byte's); 8-bit ignores it


def tune(device: str | None = None, progress=print, **grid) -> list[dict]:
    """Each launch shape (values per program x warps) of both kernels, timed as fractions of the
    copy; every shape must give the default shape's bytes (rows are computed independently)."""
    from adaqp import quant, quant_triton, wire

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    g = {**TUNE, **grid}
    out = []
    for width in g["widths"]:
        rows = g["rows"]
        x = torch.randn(rows, width, device=device)
        ids = torch.arange(rows, device=device)
        y = torch.empty_like(x)
        copy_s = _bench(lambda: y.copy_(x), device)
        for bits in g["bits"]:
            nb = quant.packed_row_nbytes(width, bits)
            ref = torch.empty(rows * (nb + wire.HEADER_NBYTES), dtype=torch.uint8, device=device)
            quant_triton.quantize_pack(x, ids, ids, bits, 7, ref)
            shapes = [(t, w, gv) for t in g["tiles"] for w in g["warps"] for gv in g["groups"]
                      if gv is None or (bits < 8 and gv * bits <= 32)]
            for tile_elements, warps, group in shapes:
                buf = torch.full_like(ref, 0xA5)
                kw = dict(tile_elements=tile_elements, num_warps=warps)
                quant_triton.quantize_pack(x, ids, ids, bits, 7, buf, group_values=group, **kw)
                row = dict(width=width, rows=rows, bits=bits, tile_elements=tile_elements, num_warps=warps,
                           group_values=group or "byte", identical=bool(torch.equal(buf, ref)),
                           x_nbytes=x.numel() * 4, msg_nbytes=ref.numel(), copy_s=copy_s)
                row["fused_q_s"] = _bench(
                    lambda: quant_triton.quantize_pack(x, ids, ids, bits, 7, buf, group_values=group, **kw), device)
                row["fused_dq_s"] = _bench(
                    lambda: quant_triton.unpack_dequantize(ref, rows, bits, width, y, ids, **kw), device)
                out.append(_rates(row))
                if progress:
                    progress(f"F={width:>5} b={bits} tile={tile_elements:>5} warps={warps} group={group or 'byte'}  "
                             f"fused q {row['fused_q_frac']:.2f} dq {row['fused_dq_frac']:.2f}  "
                             f"identical={row['identical']}")
    return out


def _line(row: dict) -> str:
    f = lambda k: f"{row[k]:.2f}" if k in row else "-"  # noqa: E731
    return (f"F={row['width']:>5} R={row['rows']:>9} b={row['bits']}  copy {row.get('copy_GBps', 0):7.0f} GB/s  "
            f"fused q {f('fused_q_frac')} dq {f('fused_dq_frac')}  eager q {f('eager_q_frac')} "
            f"dq {f('eager_dq_frac')}  (fractions of copy)  identical={row.get('identical')}  {row.get('note', '')}")


def write(rows: list[dict], out_dir: Path, meta: dict, name: str = "kernels") -> None:
    """``<name>.csv`` (width, rows, bits first) and ``<name>.json`` (with ``meta``) in ``out_dir``."""
    first = ("width", "rows", "bits")
    write_csv(out_dir / f"{name}.csv", rows, [*first, *sorted({k for r in rows for k in r} - set(first))])
    write_json(out_dir / f"{name}.json", {"meta": meta, "rows": rows})


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 widths x 3 row counts x 3 bit-widths")
    ap.add_argument("--tune", action="store_true",
                    help="time launch shapes (values per program x warps x values packed per thread) of both "
                         "kernels at 10^6 rows instead")
    ap.add_argument("--out", type=Path, default=None,
                    help="write kernels.csv / kernels.json (tune.csv / tune.json with --tune) here")
    args = ap.parse_args(argv)
    rows = tune() if args.tune else run_grid(args.quick)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        write(rows, args.out, {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"},
              "tune" if args.tune else "kernels")


if __name__ == "__main__":
    main()
