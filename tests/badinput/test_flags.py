"""Numeric flags with hostile values: exit 0 or one error line with exit 2, never a traceback or a hang.

Values: negative, zero, NaN, +-inf, overflowing, non-numeric, empty, fractional where an integer
is wanted, and huge (a billion layers must be refused, not attempted).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers.badinput import BOUNDED, assert_refused_or_ok

GRAPH = "sbm:nodes=60,classes=3,feat=8,deg=4,seed=0"
SPECIAL = ("-1", "0", "nan", "inf", "-inf", "1e400", "abc", "", "1.5", "3", "1e9", "0x10", "-0", "1_000")
values = st.one_of(st.sampled_from(SPECIAL), st.integers(-10**12, 10**12).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr))

ESTIMATE = ["--parts", "--layers", "--hidden", "--dropout", "--seed", "--bits", "--heads"]
PLAN = ["--time-budget", "--lambda", "--time-limit", "--max-groups", "--points", "--bits-set"]


@BOUNDED
@given(flag=st.sampled_from(ESTIMATE), value=values, command=st.sampled_from(("estimate", "simulate")))
def test_estimate_and_simulate_flags(flag, value, command):
    base = {"--parts": "2", "--cluster": "local-cpu", "--bits": "4"}
    args = {**base, flag: value}
    assert_refused_or_ok([command, GRAPH, *(x for kv in args.items() for x in kv)])


@BOUNDED
@given(flag=st.sampled_from(PLAN), value=values)
def test_plan_flags(flag, value):
    args = {"--parts": "2", "--cluster": "local-cpu", "--mode": "lambda", "--solver": "greedy", flag: value}
    if flag == "--time-budget":
        args["--mode"] = "min-variance"
    assert_refused_or_ok(["plan", GRAPH, *(x for kv in args.items() for x in kv)])


@BOUNDED
@given(flag=st.sampled_from(("--parts", "--seed")), value=values)
def test_partition_flags(flag, value):
    args = {"--parts": "2", flag: value}
    assert_refused_or_ok(["partition", GRAPH, *(x for kv in args.items() for x in kv)])


@BOUNDED
@given(spec=st.sampled_from(("sbm:nodes={}", "sbm:nodes=60,classes={}", "sbm:nodes=60,feat={}",
                             "sbm:nodes=60,deg={}", "rmat:scale={}", "rmat:scale=6,edgefactor={}")), value=values)
def test_generator_parameters(spec, value):
    if value.lstrip("-").isdigit() and abs(int(value)) > 10**5:
        value = "100000"  # a billion nodes is a valid request that takes long, not bad input
    assert_refused_or_ok(["data", spec.format(value)])


class _WouldLaunch(Exception):
    """Raised instead of starting ranks: everything checked before the launch has passed."""


TRAIN = ["--nprocs", "--hidden", "--layers", "--epochs", "--lr", "--dropout", "--weight-decay", "--timeout",
         "--warmup", "--eval-every", "--checkpoint-every", "--replan-every", "--time-budget", "--bits", "--seed",
         "--master-port"]


@pytest.fixture
def no_launch(monkeypatch):
    from adaqp.runtime import run

    def launch(*a, **k):
        raise _WouldLaunch
    monkeypatch.setattr(run, "launch", launch)


@BOUNDED
@given(flag=st.sampled_from(TRAIN), value=values)
def test_train_flags_are_checked_before_any_rank_starts(no_launch, flag, value, tmp_path_factory):
    args = {"--nprocs": "2", "--epochs": "2", flag: value}
    if flag in ("--replan-every", "--time-budget"):
        args.update({"--bits": "adaptive", "--schedule": "adaqp"})
    argv = ["train", GRAPH, *(x for kv in args.items() for x in kv), "--out", tmp_path_factory.mktemp("t")]
    try:
        assert_refused_or_ok(argv)
    except _WouldLaunch:
        pass  # accepted: the ranks would start now
