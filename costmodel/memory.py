"""Predicted peak memory of every rank: what the runtime holds at the busiest moment of an epoch.

One first-order model for every consumer: ``adaqp estimate`` / ``simulate`` report it, ``validate``
puts it beside the measured peak (runtime/memory.py), ``whatif`` checks it against device memory.
All tensors are fp32 unless said; ``n`` inner rows, ``h`` halo rows, ``s`` rows sent per forward
exchange, ``E`` stored edges, ``a``/``b`` a layer's input/output width. The terms
(docs/memory.md):

* **data**: input features ``4 n w0``; labels and the three masks ``11 n``.
* **plan**: the rank's halo plan as loaded (int64 ids, fp32 weights): ``20 n + 8 h + 16 s + 16 E``.
* **operators**: the sparse matrices of aggregation, forward and transposed, self loops folded in
  for GCN (int64 column + fp32 value, 12 B per entry, and int64 row pointers), built twice: the
  training and the evaluation context each build their own.
* **buffers**: one send and one receive buffer per exchange (forward every layer, backward from
  layer 1) at the plan's bit-widths, plus per-row width tensors (int64) where quantized; and the
  evaluation exchanger's fp32 buffers.
* **solver** (adaptive runs): rank 0 re-solves the BitPlan from the whole graph and every rank's
  plan, which it loads again: the data and plan terms summed over ranks, on rank 0.
* **parameters**: weights, gradients, Adam's two moments, and the flat all-reduce copy (20 B each).
* **activations**: what autograd keeps per layer (dropout mask, 1 B per element, from layer 1;
  GraphSAGE's dropped-out input; GAT's attention logits and softmax per edge (self loops
  included) and head, first-order only; the aggregate; LayerNorm's input and statistics; the ReLU output;
  the logits), plus the working set of the step at the peak: in the forward pass a layer's input
  after dropout, its received halo rows, the two halves of the aggregate and their concatenation;
  in the backward pass the gradients of the layer's output and input, of the halo rows, the
  gradients received back and their sum. Where a layer's messages are quantized and coded by the
  eager torch path (CPU), encoding and decoding one peer's rows are moments of their own: the
  coding's temporaries (:data:`EAGER_ENCODE_B`, :data:`EAGER_DECODE_B` bytes per element) beside
  the layer's input, or its gradients. The peak is the largest of these moments.

On CUDA the peak is the sum of these terms (``max_memory_allocated`` counts live tensors). On CPU
the measured figure is resident memory, so two terms are added: **allocator slack**, the sum times
:data:`CPU_ALLOCATOR_SLACK` (glibc keeps freed blocks in per-thread arenas and cannot always reuse
them for the next, differently sized tensors), and **process overhead**,
:data:`CPU_RANK_OVERHEAD_BYTES`, what the first run in a process adds whatever the graph.

Not modelled: multi-label targets (``n C`` floats instead of ``8 n``), evaluation (its forward keeps
no activations), the CUDA context and the caching allocator's reserve.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from adaqp import wire
from adaqp.costmodel.program import ModelShape
from adaqp.costmodel.workload import PlanStats, directed_pair_rows, exchanges
from adaqp.plans import BitPlan

FP32_B = 4
FP32_BITS = 32  # a channel at this width sends raw fp32 rows: no per-row width tensors
# RSS a CPU rank adds whatever its graph: modules it imports when it loads its data, shared-library
# pages its first epoch touches and thread pools. Resident over modelled live bytes on CPU: glibc
# keeps freed blocks in per-thread arenas and cannot always reuse them for the next, differently
# sized tensor. Both measured by `python3 -m adaqp.experiments.memory_constants` (2026-12-07, the
# 2-core machine of the `cpu-2core` profile, torch 2.13, glibc with adaqp's allocator settings),
# on graphs validate never runs: the slack is the median growth over live bytes of a second fp32
# run in one process (CiteSeer GCN 3 x 256, 1.60; a 40k-node SBM GCN 3 x 256, 1.54; an R-MAT
# scale 12 SAGE 3 x 128, 1.76; two more runs that day gave 1.63 and 1.47 overall), the overhead a
# 400-node graph's growth less its scaled live bytes.
CPU_RANK_OVERHEAD_BYTES = 172 * 2**20
CPU_ALLOCATOR_SLACK = 1.60
# Bytes per message element live while the eager path (adaqp.message.pack_message, no fused
# kernel) encodes one peer's rows, counted from adaqp.quant and adaqp.rng: the rows gathered (4,
# forward only), the scaled values (4), the codes (1), the counter hash and its shift (8 + 8) and
# the uniform draws (4). Decoding (unpack_message): the packed words unpacked (1; none at 8 bits),
# the dequantized rows and the message's rows (4 + 4). tests/costmodel/test_memory_coding.py counts
# both on the code.
EAGER_ENCODE_B = {"fwd": 29, "bwd": 25}
EAGER_DECODE_B = {1: 9, 2: 9, 4: 9, 8: 8}


def peak_memory_bytes(stats: PlanStats, shape: ModelShape, bits=32, device: str = "cuda",
                      first_in_process: bool = True, adaptive: bool = False,
                      cpu_memory: Mapping[str, float] | None = None) -> np.ndarray:
    """Predicted peak bytes per rank ``[P]`` for ``shape`` trained on ``stats``'s plan with messages
    at ``bits`` (an int or a BitPlan), as measured on ``device`` (runtime/memory.py): the live
    bytes on ``cuda``; on ``cpu`` the resident growth, with the process overhead only for the
    ``first_in_process`` run (later runs of one process find it paid). ``adaptive``: rank 0
    re-solves the BitPlan during training (runtime/adaptive.py). CPU ranks code messages with the
    eager path, GPU ranks with the fused kernels (no temporaries of a message's size).
    ``cpu_memory``: a profile's measured ``allocator_slack`` / ``rank_overhead_bytes``
    (``HardwareProfile.cpu_memory``); the module's constants where it has none."""
    live = sum(memory_terms(stats, shape, bits, adaptive, eager_coding=device == "cpu").values())
    if device != "cpu":
        return live
    cpu_memory = cpu_memory or {}
    slack = float(cpu_memory.get("allocator_slack", CPU_ALLOCATOR_SLACK))
    overhead = float(cpu_memory.get("rank_overhead_bytes", CPU_RANK_OVERHEAD_BYTES))
    return live * slack + (overhead if first_in_process else 0.0)


def memory_terms(stats: PlanStats, shape: ModelShape, bits=32, adaptive: bool = False,
                 eager_coding: bool = False) -> dict[str, np.ndarray]:
    """The model's terms per rank, in bytes (they add up to :func:`peak_memory_bytes`);
    ``eager_coding``: quantized messages are coded by the eager torch path (CPU ranks)."""
    f = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    n, h, nm = f(stats.inner), f(stats.halo), f(stats.marginal)
    s = f(stats.pair_rows.sum(axis=1))
    E = f(stats.nnz_central + stats.nnz_marginal)
    w, L = shape.widths, shape.layers

    entries = E + (n if shape.model == "gcn" else 0)  # GCN folds the self loops into the matrices
    operators = 2 * (2 * 12 * entries + 8 * (3 * n + nm + h + 6))
    buffers = _buffers(stats, w[:-1], bits) + _buffers(stats, w[:-1], 32)
    saved = [_saved(shape, l, n, E) for l in range(L)]
    coding = _coding_work(stats, shape, bits, n, h, s) if eager_coding else {}
    fwd = max((sum(saved[:l]) + np.maximum(_forward_work(l, w, n, h, shape, E), coding.get((l, "fwd"), 0))
               for l in range(L)), key=lambda a: float(a.max()))
    bwd = max((sum(saved[:l + 1]) + np.maximum(_backward_work(l, w, n, h, s), coding.get((l, "bwd"), 0))
               for l in range(L)), key=lambda a: float(a.max()))
    data, plan = FP32_B * n * w[0] + 11 * n, 20 * n + 8 * h + 16 * s + 16 * E
    # an adaptive run's re-solve loads the whole graph and every rank's plan again, on rank 0
    solver = np.where(np.arange(len(n)) == 0, float((data + plan).sum()), 0.0) if adaptive else np.zeros_like(n)
    return {"data": data, "plan": plan, "solver": solver,
            "operators": operators,
            "buffers": buffers,
            "parameters": np.full_like(n, 20.0 * shape.num_params),
            "activations": np.maximum(fwd, bwd)}


def _buffers(stats: PlanStats, widths, bits) -> np.ndarray:
    """Send + receive buffer bytes of every exchange of an epoch, per rank; quantized channels
    also hold each row's width as int64 on both ends."""
    out = np.zeros(stats.num_parts)
    for ex in exchanges(stats, list(widths), bits):
        out += ex.nbytes.sum(axis=1) + ex.nbytes.sum(axis=0)
        for b, rows in ex.send_rows.items():
            out += 0 if b == FP32_BITS else 8 * rows
        for b, rows in ex.recv_rows.items():
            out += 0 if b == FP32_BITS else 8 * rows
    return out


def _heads(shape: ModelShape, l: int) -> int:
    return shape.gat_heads(l)[0] if shape.model == "gat" else 1


def _saved(shape: ModelShape, l: int, n, E) -> np.ndarray:
    """Bytes autograd keeps from layer ``l``'s forward until its backward."""
    a, b, last = shape.widths[l], shape.widths[l + 1], l == shape.layers - 1
    out = FP32_B * n * a  # the aggregate, input of the linear map (its weight gradient)
    if shape.dropout and l > 0:  # layer 0's input needs no gradient: no mask is kept
        out = out + n * a
    if shape.model == "sage":  # the root term's linear map keeps its input too
        out = out + FP32_B * n * a
    if shape.model == "gat":  # per edge and head: attention logits, softmax [, dropout mask]
        out = out + _heads(shape, l) * (E + n) * (2 * FP32_B + (1 if shape.attn_dropout else 0))
    if last:
        return out + FP32_B * n * b  # the logits
    if shape.layer_norm:  # LayerNorm keeps its input and per-row mean and 1/std
        out = out + FP32_B * n * b + 8 * n
    return out + FP32_B * n * b  # the ReLU output


def _forward_work(l: int, w, n, h, shape: ModelShape, E) -> np.ndarray:
    """Live during layer ``l``'s aggregation beyond what is kept: the input after dropout and its
    mask, the received halo rows, the central and marginal halves and their concatenation."""
    a = w[l]
    work = FP32_B * a * (3 * n + h) + (n * a if shape.dropout else 0)
    if shape.model == "gat":  # the edge scores before the softmax
        work = work + FP32_B * _heads(shape, l) * (E + n)
    return work


def _backward_work(l: int, w, n, h, s) -> np.ndarray:
    """Live during layer ``l``'s backward: gradients of the output (through ReLU and LayerNorm)
    and of the aggregate, of the halo rows, the rows received back, the local part and the sum.
    Layer 0's input (the features) needs no gradient: autograd stops at its weights."""
    a, b = w[l], w[l + 1]
    if l == 0:
        return FP32_B * 2 * n * b
    return FP32_B * (2 * n * b + 3 * n * a) + FP32_B * a * (h + s)


def _coded_rows(stats: PlanStats, bits, layer: int, direction: str) -> np.ndarray:
    """Quantized rows per ordered pair ``[sender, receiver]`` of one exchange."""
    if isinstance(bits, BitPlan):
        out = np.zeros((stats.num_parts, stats.num_parts))
        for (lay, d, snd, rcv) in bits.channels():
            if (lay, d) == (layer, direction):
                out[snd, rcv] = np.isin(bits.channel(lay, d, snd, rcv), wire.QUANT_BITS).sum()
        return out
    rows = directed_pair_rows(stats, direction)
    return rows.astype(np.float64) if wire.check_bits(bits) in wire.QUANT_BITS else np.zeros(rows.shape)


def _coding_work(stats: PlanStats, shape: ModelShape, bits, n, h, s) -> dict[tuple[int, str], np.ndarray]:
    """Live while a rank encodes its largest peer's rows and while it decodes its largest peer's,
    per quantized exchange ``(layer, direction)``: forward beside the layer's input after dropout
    (and the halo rows being filled, when decoding); backward beside the gradients of the layer's
    output, inner and halo rows (and the rows received back, when decoding)."""
    w, out = shape.widths, {}
    dec_b = max(EAGER_DECODE_B[b] for b in wire.QUANT_BITS)  # a plan's widths vary per row: the widest temporaries
    if not isinstance(bits, BitPlan) and wire.check_bits(bits) in wire.QUANT_BITS:
        dec_b = EAGER_DECODE_B[wire.check_bits(bits)]
    for layer in range(shape.layers):
        for d in ("fwd",) if layer == 0 else ("fwd", "bwd"):
            rows = _coded_rows(stats, bits, layer, d)
            if not rows.any():
                continue
            a, b = w[layer], w[layer + 1]
            if d == "fwd":
                base = FP32_B * n * a + (n * a if shape.dropout else 0)
                got = FP32_B * h * a
            else:
                base = FP32_B * (n * b + a * (n + h))
                got = FP32_B * s * a
            encode = base + EAGER_ENCODE_B[d] * a * rows.max(axis=1)
            decode = base + got + dec_b * a * rows.max(axis=0)
            out[(layer, d)] = np.maximum(encode, decode)
    return out


def summary(per_rank: np.ndarray, device: str) -> dict:
    """``{"per_rank": [...], "max": ..., "device": ...}`` in bytes, as summary.json files carry it
    (``device``: what the figure stands for, live bytes on cuda, resident growth on cpu)."""
    return {"per_rank": [int(round(float(b))) for b in per_rank], "max": int(round(float(np.max(per_rank)))),
            "device": device}


def memory_line(per_rank: np.ndarray, device: str) -> str:
    """One printed line: the predicted peak of every rank and the largest, in MiB."""
    what = "resident growth, process overhead included" if device == "cpu" else "live tensors"
    return (f"predicted peak memory per rank (MiB, {what}): " + ", ".join(f"{b / 2**20:.1f}" for b in per_rank)
            + f"; max {float(np.max(per_rank)) / 2**20:.1f}")
