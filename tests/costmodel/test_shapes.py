"""costmodel.shapes: the op sizes a workload asks, taken from the code that asks."""

import numpy as np
import pytest
from helpers.graphs import two_part_workload

from adaqp.costmodel.profile import load_profile, record_ops
from adaqp.costmodel.program import build_program
from adaqp.costmodel.shapes import SAME_SIZE_REL, count, unique_sizes, workload_shapes
from adaqp.errors import AdaqpInputError


def _same_within_tolerance(kept, wanted):
    """Every kept value is one asked, and every asked value is within the dedupe tolerance of a kept one."""
    kept, wanted = set(kept), {int(v) for v in wanted}
    return kept <= wanted and all(any(abs(w - k) <= SAME_SIZE_REL * max(w, k) for k in kept) for w in wanted)


@pytest.fixture(scope="module")
def workload():
    return two_part_workload("sbm:nodes=400,classes=3,feat=300,deg=6,seed=2", (300, 32, 32, 3))


def test_sizes_are_the_models_widths_and_the_plans_counts(workload):
    stats, shape = workload
    sh = workload_shapes(stats, shape, bits=(2, 8))
    # SpMM at every layer's input width; forward nnz = edges into central / marginal rows + self loops
    assert {s["width"] for s in sh["spmm_fwd"]} == {300, 32}
    # (the marginal rows aggregate their inner and their halo columns as two SpMMs)
    marginal_inner = stats.nnz_marginal - stats.nnz_marginal_halo + stats.marginal
    nnz = {int(v) for v in np.concatenate([stats.nnz_central + stats.central, marginal_inner,
                                           stats.nnz_marginal_halo]) if v > 0}
    assert _same_within_tolerance({s["nnz"] for s in sh["spmm_fwd"]}, nnz)
    assert _same_within_tolerance({s["rows"] for s in sh["spmm_fwd"]}, np.concatenate([stats.central, stats.marginal]))
    # the input layer has no aggregation backward
    assert {s["width"] for s in sh["spmm_bwd"]} == {32}
    # GEMMs: one per layer, over the inner rows
    assert {(s["in_dim"], s["out_dim"]) for s in sh["gemm_fwd"]} == {(300, 32), (32, 32), (32, 3)}
    assert _same_within_tolerance({s["rows"] for s in sh["gemm_fwd"]}, stats.inner)
    # backward: dX, dW and db above the input layer; dW and db only for it (no gradient to features)
    assert {(s["in_dim"], s["out_dim"]) for s in sh["gemm_bwd"]} == {(32, 32), (32, 3)}
    assert {(s["in_dim"], s["out_dim"]) for s in sh["gemm_bwd_w"]} == {(300, 32)}
    # quantize / dequantize only at the asked bit-widths; vanilla's fp32 path is the copy
    assert {op for op in sh if "quantize" in op} == {"quantize_b2", "dequantize_b2", "quantize_b8", "dequantize_b8"}
    assert {s["width"] for s in sh["quantize_b2"]} == {300, 32} and "copy" in sh
    assert sh["adam"] == [{"elements": shape.num_params}]
    for op, sizes in sh.items():
        for s in sizes:
            assert all(isinstance(v, int) and v > 0 for v in s.values()), (op, s)
            if "width" in s and "elements" in s:
                assert s["elements"] == s["rows"] * s["width"]


def test_every_size_asked_is_covered_and_nothing_else(workload):
    stats, shape = workload
    p = load_profile("cpu-2core")
    sh = workload_shapes(stats, shape, bits=(4,), profile=p)
    with record_ops() as calls:
        build_program(stats, shape, "quant", p, bits=4)
        build_program(stats, shape, "vanilla", p)
    asked = unique_sizes(calls, rel=0.0)
    assert set(asked) == set(sh)
    for op, sizes in asked.items():
        for s in sizes:  # each asked size is within the dedupe tolerance of one kept
            assert any(all(abs(s[k] - t[k]) <= SAME_SIZE_REL * max(s[k], t[k]) for k in s) for t in sh[op]), (op, s)
        assert len(sh[op]) <= len(sizes)


def test_unique_sizes_expands_ranks_drops_zeros_and_near_duplicates():
    calls = [("relu", {"rows": np.array([1000, 1010, 0, 5000]), "width": 64}),
             ("adam", {"elements": 7}), ("adam", {"elements": 7})]
    out = unique_sizes(calls)
    assert out["relu"] == [{"rows": 1000, "width": 64}, {"rows": 5000, "width": 64}]
    assert out["adam"] == [{"elements": 7}] and count(out) == 3


def test_bad_bits_are_refused(workload):
    with pytest.raises(AdaqpInputError):
        workload_shapes(*workload, bits=(3,))


def test_a_profile_without_the_weight_only_backward_costs_it_as_the_forward_gemm(workload):
    import dataclasses

    p = load_profile("cpu-2core")
    sizes = dict(rows=500, in_dim=300, out_dim=32)
    lacking = dataclasses.replace(p, ops={k: v for k, v in p.ops.items() if k != "gemm_bwd_w"})
    assert lacking.op("gemm_bwd_w", **sizes) == p.op("gemm_fwd", **sizes)  # the same multiply-adds
    assert "gemm_bwd_w" in p.ops and p.op("gemm_bwd_w", **sizes) < p.op("gemm_bwd", **sizes)


@pytest.mark.parametrize("schedule,bits", [("vanilla", 32), ("quant", 2), ("overlap", 32)])
def test_epoch_sequences_cost_what_the_program_costs_per_rank(workload, schedule, bits):
    """Each rank's sequence is the program's compute, call by call: costed with the same profile
    it sums to the rank's compute steps (and the compute hidden under exchanges)."""
    from adaqp.costmodel.program import Compute, Exchange
    from adaqp.costmodel.shapes import epoch_sequences

    stats, shape = workload
    p = load_profile("cpu-2core")
    seqs = epoch_sequences(stats, shape, schedule, bits, p)
    assert len(seqs) == stats.num_parts
    prog = build_program(stats, shape, schedule, p, bits=bits, interference=1.0)  # (overlap slows hidden compute)
    for r, seq in enumerate(seqs):
        want = sum(float(s.seconds[r]) for s in prog if isinstance(s, Compute))
        want += sum(float(s.hidden[r]) for s in prog if isinstance(s, Exchange) and s.hidden is not None)
        assert sum(p.op(op, **sizes) for op, sizes in seq) == pytest.approx(want, rel=1e-9)
        assert all(min(s.values()) > 0 and all(isinstance(v, int) for v in s.values()) for _, s in seq)
        # the runtime's order: the input layer's dropout first, the optimizer last
        assert seq[0] == ("dropout", {"rows": int(stats.inner[r]), "width": 300, "elements": int(stats.inner[r]) * 300})
        assert seq[-1] == ("adam", {"elements": shape.num_params})
    coded = {op for seq in seqs for op, _ in seq if "quantize" in op}
    assert coded == ({"quantize_b2", "dequantize_b2"} if schedule == "quant" else set())
