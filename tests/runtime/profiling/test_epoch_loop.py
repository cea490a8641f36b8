"""runtime.profiling.epoch_loop: a workload's ops timed in epoch order, and the profile that reads them."""

from dataclasses import replace

import pytest
from helpers.graphs import two_part_workload

from adaqp.costmodel.profile import load_profile
from adaqp.costmodel.shapes import epoch_sequences
from adaqp.errors import AdaqpInputError
from adaqp.runtime.profiling.epoch_loop import in_epoch_profile, points_of, time_sequences


@pytest.fixture(scope="module")
def sequences():
    return epoch_sequences(*two_part_workload("sbm:nodes=400,classes=3,feat=24,deg=6,seed=2", (24, 16, 16, 3)),
                           "quant", 4, load_profile("cpu-2core"))


def _count(sequences):
    n = {}
    for seq in sequences:
        for op, sizes in seq:
            k = (op, *sorted(sizes.items()))
            n[k] = n.get(k, 0) + 1
    return n


def test_every_call_is_timed_on_every_pass(sequences):
    times = time_sequences(sequences, reps=3, warmup=1)
    want = _count(sequences)
    assert set(times) == set(want)
    for k, ts in times.items():  # a size called twice in an epoch is timed twice per pass
        assert len(ts) == 3 * want[k] and all(t > 0 for t in ts), k


def test_points_are_the_median_and_spread_of_a_sizes_calls():
    times = {("relu", ("elements", 80), ("rows", 10), ("width", 8)): [3.0, 1.0, 2.0, 10.0, 4.0],
             ("spmm_fwd", ("nnz", 50), ("rows", 10), ("width", 8)): [2.0]}
    pts = points_of(times)
    assert pts["relu"] == [{"rows": 10, "width": 8, "elements": 80, "median_s": 3.0, "p10_s": 1.4, "p90_s": 7.6}]
    assert pts["spmm_fwd"] == [{"nnz": 50, "rows": 10, "width": 8, "median_s": 2.0, "p10_s": 2.0, "p90_s": 2.0}]


def test_the_profile_answers_each_timed_size_with_its_median(sequences, monkeypatch):
    from adaqp.runtime.profiling import epoch_loop

    fixed = {k: [1e-3 * (i + 1)] for i, k in enumerate(_count(sequences))}
    monkeypatch.setattr(epoch_loop, "time_sequences", lambda seqs, device, reps: fixed)
    base = load_profile("cpu-2core")
    prof = in_epoch_profile(base, sequences, reps=2, note="tiny")
    for (op, *items), (t,) in fixed.items():
        assert prof.op(op, **dict(items)) == pytest.approx(t, rel=1e-9), op
    for op in prof.ops:  # the fitted models stay: other sizes predict as before
        assert (prof.ops[op].kind, prof.ops[op].coef) == (base.ops[op].kind, base.ops[op].coef)
    entry = prof.meta["measured_in_epoch"][-1]
    assert entry["workload"] == "tiny" and entry["ranks"] == 2 and entry["reps"] == 2
    assert entry["calls_per_pass"] == sum(map(len, sequences))


def test_an_op_the_profile_lacks_is_timed_as_the_op_that_costs_it(sequences):
    base = load_profile("cpu-2core")
    lacking = replace(base, ops={k: v for k, v in base.ops.items() if k != "gemm_bwd_w"})
    prof = in_epoch_profile(lacking, sequences, reps=1)
    assert "gemm_bwd_w" not in prof.ops
    asked = [s for seq in sequences for op, s in seq if op == "gemm_bwd_w"]
    assert asked and all(any(all(p[k] == s[k] for k in s) for p in prof.ops["gemm_fwd"].points) for s in asked)


def test_a_spec_derived_profile_is_refused(sequences):
    with pytest.raises(AdaqpInputError, match="measured profile"):
        in_epoch_profile(load_profile("h100"), sequences)
