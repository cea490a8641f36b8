"""The halo exchange of one rank, per (layer, direction), executing a BitPlan.

Forward at layer ``l``: this rank sends ``h[send_local[p]]`` to every peer ``p`` and receives its
halo rows. Backward (layers ``1..L-1``): the gradients of the halo rows travel back to their
owners, which add them into the gradients of the rows they sent. Sizes are fixed by the
HaloPlan and the BitPlan, so the byte splits and buffers are computed once per plan and reused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from adaqp import message, wire
from adaqp.halo import RankHalo
from adaqp.plans import BitPlan
from adaqp.rng import KeyStream
from adaqp.runtime import faults

FP32 = 32


@dataclass
class _Channel:
    """Everything one (layer, direction) exchange needs, precomputed."""

    width: int
    send_bits: list[torch.Tensor | None]  # per peer; None = fp32 pass-through (no packing)
    recv_bits: list[torch.Tensor | None]
    send_plans: list  # per peer: message.message_plan (layout, order), built once per BitPlan
    recv_plans: list
    send_splits: list[int]
    recv_splits: list[int]
    send_buf: torch.Tensor
    recv_buf: torch.Tensor


class Pending:
    """An exchange in flight: ``wait()`` on the transport's work, then decode."""

    def __init__(self, channel: _Channel, work, rows_out: int, t_launch_ns: int) -> None:
        self.channel, self.work, self.rows_out, self.t_launch_ns = channel, work, rows_out, t_launch_ns


class HaloExchanger:
    def __init__(self, halo: RankHalo, widths: list[int], transport, device: torch.device,
                 bitplan: BitPlan | None = None, quantize: bool = False, seed: int = 0,
                 timer=None) -> None:
        self.halo, self.widths, self.transport, self.device = halo, list(widths), transport, device
        self.timer = timer
        self.rank, self.num_parts = halo.rank, halo.num_parts
        # Keys for the counter-based stochastic rounding (adaqp.rng): drawn on the host, so
        # encoding a message never waits for the device; the same on the torch and Triton paths.
        self.generator = KeyStream(seed * 1_000_003 + self.rank)
        ptr = lambda a: [int(a[p]) for p in range(self.num_parts + 1)]  # noqa: E731
        self.send_ptr, self.recv_ptr = ptr(halo.send_ptr), ptr(halo.recv_ptr)
        self.send_index = torch.as_tensor(halo.send_local, dtype=torch.int64, device=device)
        # Row ranges (max - min) of the last message sent per channel, recorded only when asked:
        # the adaptive mode re-solves the BitPlan from them every K epochs (then set_bitplan).
        self.trace_ranges = False
        self.row_ranges: dict[tuple[int, str, int, int], torch.Tensor] = {}
        self.set_bitplan(bitplan if quantize else None)

    # ---- plan ---------------------------------------------------------------------------
    def set_bitplan(self, bitplan: BitPlan | None) -> None:
        """(Re)build every channel for ``bitplan`` (None = fp32). The adaptive mode calls this
        after each re-solve; buffers are reallocated only here, never per epoch."""
        self.bitplan = bitplan
        L = len(self.widths)
        self.channels = {(l, "fwd"): self._channel(l, "fwd") for l in range(L)}
        self.channels.update({(l, "bwd"): self._channel(l, "bwd") for l in range(1, L)})

    def _bits(self, layer: int, direction: str, s: int, r: int, rows: int) -> torch.Tensor | None:
        if self.bitplan is None or rows == 0:
            return None
        b = self.bitplan.channel(layer, direction, s, r)
        assert b.shape[0] == rows, "BitPlan does not match the HaloPlan (validated before training)"
        if rows and bool((b == FP32).all()):
            return None
        return torch.as_tensor(b.astype("int64"), device=self.device)

    def _channel(self, layer: int, direction: str) -> _Channel:
        me, P, F = self.rank, self.num_parts, self.widths[layer]
        send_n = [self.send_ptr[p + 1] - self.send_ptr[p] for p in range(P)]
        recv_n = [self.recv_ptr[p + 1] - self.recv_ptr[p] for p in range(P)]
        if direction == "bwd":  # gradients go back along the forward channel, reversed
            send_n, recv_n = recv_n, send_n
        sb = [self._bits(layer, direction, me, p, send_n[p]) for p in range(P)]
        rb = [self._bits(layer, direction, p, me, recv_n[p]) for p in range(P)]
        mplan = lambda bits: None if bits is None else message.message_plan(bits, F, self.device)  # noqa: E731
        sp, rp = [mplan(b) for b in sb], [mplan(b) for b in rb]
        size = lambda plan, n: n * F * 4 if plan is None else message.plan_nbytes(plan, F)  # noqa: E731
        ss = [size(sp[p], send_n[p]) for p in range(P)]
        rs = [size(rp[p], recv_n[p]) for p in range(P)]
        buf = lambda n: torch.empty(n, dtype=torch.uint8, device=self.device)  # noqa: E731
        return _Channel(F, sb, rb, sp, rp, ss, rs, buf(sum(ss)), buf(sum(rs)))

    def channel_nbytes(self, layer: int, direction: str) -> tuple[int, int]:
        c = self.channels[(layer, direction)]
        return sum(c.send_splits), sum(c.recv_splits)

    # ---- exchange -----------------------------------------------------------------------
    def start(self, layer: int, direction: str, rows: torch.Tensor, async_op: bool) -> Pending:
        """Encode and launch. ``rows``: forward, this rank's inner rows ``[n_inner, F]``;
        backward, the gradients of its halo rows ``[n_halo, F]``."""
        c = self.channels[(layer, direction)]
        ptr = self.send_ptr if direction == "fwd" else self.recv_ptr
        with self._phase("quantize" if self.bitplan is not None else "pack"):
            off = 0
            for p in range(self.num_parts):
                lo, hi = ptr[p], ptr[p + 1]
                if hi == lo:
                    continue
                # forward rows are gathered by index (inside the fused kernel when it runs)
                x, index = (rows, self.send_index[lo:hi]) if direction == "fwd" else (rows[lo:hi], None)
                if self.trace_ranges:
                    xs = x if index is None else x.index_select(0, index)
                    self.row_ranges[(layer, direction, self.rank, p)] = (xs.amax(1) - xs.amin(1)).cpu()
                n = c.send_splits[p]
                if c.send_bits[p] is None:
                    dst = c.send_buf[off:off + n].view(torch.float32).view(hi - lo, c.width)
                    if index is None:
                        dst.copy_(x)
                    else:
                        torch.index_select(x, 0, index, out=dst)
                else:
                    message.pack_message(x, c.send_bits[p], self.generator, check=False,
                                       out=c.send_buf[off:off + n], index=index, plan=c.send_plans[p])
                off += n
        faults.point("exchange")
        t0 = time.perf_counter_ns()
        work = self.transport.all_to_all(c.recv_buf, c.send_buf, c.recv_splits, c.send_splits, async_op)
        out_rows = (self.recv_ptr if direction == "fwd" else self.send_ptr)[-1]
        return Pending(c, work, out_rows, t0)

    def finish(self, pending: Pending) -> torch.Tensor:
        """Wait for the exchange and decode: forward, the halo rows ``[n_halo, F]`` in recv
        order; backward, the gradients for the rows this rank sent, in send order."""
        c = pending.channel
        with self._phase("wait"):
            pending.work.wait()
        if self.timer is not None:
            self.timer.add("communicate", "comm", pending.t_launch_ns, time.perf_counter_ns())
        out = torch.empty(pending.rows_out, c.width, dtype=torch.float32, device=self.device)
        with self._phase("dequantize" if self.bitplan is not None else "unpack"):
            off, row = 0, 0
            for p in range(self.num_parts):
                n = c.recv_splits[p]
                if n == 0:
                    continue
                bits = c.recv_bits[p]
                rows = n // (c.width * 4) if bits is None else bits.shape[0]
                data = c.recv_buf[off:off + n]
                out[row:row + rows] = (data.view(torch.float32).view(rows, c.width) if bits is None
                                       else message.unpack_message(data, bits, c.width, plan=c.recv_plans[p]))
                off, row = off + n, row + rows
        return out

    def _phase(self, name: str):
        from contextlib import nullcontext

        return self.timer.phase(name) if self.timer is not None else nullcontext()


def uniform_fp32_nbytes(halo: RankHalo, width: int) -> int:
    """Bytes this rank sends per forward exchange at fp32 (for reporting)."""
    return int(wire.message_nbytes(int(halo.send_ptr[-1]), width, FP32))
