"""Schedule and BitPlan: presets, registry, construction, validation, sizes and file round trips."""

import json

import numpy as np
import pytest

from adaqp import schedule as schedule_mod
from adaqp.errors import AdaqpInputError
from adaqp.plans import (
    ADAQP,
    VANILLA,
    BitPlan,
    Schedule,
    expected_channels,
    register_schedule,
    schedule_names,
)
from adaqp.wire import row_nbytes

# 3 parts: 0 sends 5 rows to 1 and 2 to 2; 1 sends 3 to 0; 2 sends nothing.
PAIR = np.array([[0, 5, 2], [3, 0, 0], [0, 0, 0]], dtype=np.int64)
L = 3


def mixed_plan() -> BitPlan:
    rng = np.random.default_rng(0)
    chans = expected_channels(PAIR, L)
    return BitPlan(L, 3, {k: rng.choice([1, 2, 4, 8, 16, 32], size=n) for k, n in chans.items()})


# ---- Schedule ------------------------------------------------------------------------------------
def test_schedule_presets_and_parse():
    assert schedule_names()[:4] == ("vanilla", "quant", "overlap", "adaqp")
    assert [Schedule.parse(n) for n in ("vanilla", "quant", "overlap", "adaqp")] == [
        Schedule("vanilla", False, False), Schedule("quant", True, False),
        Schedule("overlap", False, True), Schedule("adaqp", True, True)]
    assert Schedule.parse(" AdaQP ") is ADAQP and Schedule.parse(VANILLA) is VANILLA


def test_schedule_unknown_name_lists_options():
    with pytest.raises(AdaqpInputError, match="unknown schedule 'fast'.*vanilla, quant, overlap, adaqp"):
        Schedule.parse("fast")


def test_schedule_round_trip_and_bad_dicts():
    for s in (VANILLA, ADAQP, Schedule("custom-x", True, False)):
        assert Schedule.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    with pytest.raises(AdaqpInputError, match="exactly the fields"):
        Schedule.from_dict({"name": "adaqp", "quantize": True})
    with pytest.raises(AdaqpInputError, match="schedule.overlap must be true or false"):
        Schedule.from_dict({"name": "x", "quantize": True, "overlap": "yes"})
    with pytest.raises(AdaqpInputError, match="'adaqp' is registered as"):
        Schedule.from_dict({"name": "adaqp", "quantize": False, "overlap": True})


def test_register_schedule(monkeypatch):
    monkeypatch.setattr(schedule_mod, "_SCHEDULES", dict(schedule_mod._SCHEDULES))  # leave the registry as found
    s = register_schedule(Schedule("test-quant-only-fwd", True, False))
    assert Schedule.parse("test-quant-only-fwd") is s and "test-quant-only-fwd" in schedule_names()
    assert register_schedule(Schedule("test-quant-only-fwd", True, False)) == s  # same: no-op
    with pytest.raises(AdaqpInputError, match="already registered"):
        register_schedule(Schedule("adaqp", False, False))
    assert register_schedule(Schedule("adaqp", False, False), replace=True) == Schedule.parse("adaqp")


# ---- BitPlan construction ------------------------------------------------------------------------
def test_expected_channels_follow_the_fwd_bwd_convention():
    chans = expected_channels(PAIR, L)
    assert chans[(0, "fwd", 0, 1)] == 5 and chans[(2, "bwd", 1, 0)] == 5
    assert chans[(1, "bwd", 0, 1)] == 3 and (0, "bwd", 1, 0) not in chans
    assert len(chans) == 3 * L + 3 * (L - 1)
    assert list(chans)[:3] == [(0, "fwd", 0, 1), (0, "fwd", 0, 2), (0, "fwd", 1, 0)]


def test_uniform_plan():
    plan = BitPlan.uniform(PAIR, L, 8)
    assert plan.is_uniform() and plan.total_rows == 10 * L + 10 * (L - 1)
    assert plan.channel(1, "bwd", 2, 0).tolist() == [8, 8]
    assert plan.channel(0, "fwd", 2, 1).size == 0  # valid pair that sends nothing
    np.testing.assert_array_equal(plan.pair_rows, PAIR)
    assert plan.histogram()[(0, "fwd")] == {8: 10} and (0, "bwd") not in plan.histogram()
    with pytest.raises(AdaqpInputError, match="bit-width 3 not supported"):
        BitPlan.uniform(PAIR, L, 3)


def test_keys_are_normalised():
    bits = {(np.int64(l), d, np.int32(s), r): v for (l, d, s, r), v in mixed_plan().bits.items()}
    assert BitPlan(np.int64(L), 3, bits) == mixed_plan()


def test_channel_arrays_are_read_only_int8():
    a = mixed_plan().channel(0, "fwd", 0, 1)
    assert a.dtype == np.int8
    with pytest.raises(ValueError):
        a[0] = 4


def test_from_groups_sizes_indices_and_default():
    groups = {(0, "fwd", 0, 1): [(2, 4), (3, 8)],                       # sizes, in send order
              (1, "fwd", 0, 1): [(np.array([4, 0]), 2), ([1, 2, 3], 16)],  # row indices
              (2, "bwd", 2, 0): 1}                                       # whole channel
    plan = BitPlan.from_groups(PAIR, L, groups, default_bits=32)
    assert plan.channel(0, "fwd", 0, 1).tolist() == [4, 4, 8, 8, 8]
    assert plan.channel(1, "fwd", 0, 1).tolist() == [2, 16, 16, 16, 2]
    assert plan.channel(2, "bwd", 2, 0).tolist() == [1, 1]
    assert plan.channel(1, "bwd", 0, 1).tolist() == [32, 32, 32]
    assert not plan.is_uniform()


@pytest.mark.parametrize("groups, match", [
    ({(0, "fwd", 0, 1): [(2, 4), (2, 8)]}, "group sizes add up to 4 but the channel has 5 rows"),
    ({(0, "fwd", 0, 1): [([0, 1, 1], 4), ([2, 3, 4], 8)]}, "cover rows 0..4 exactly once"),
    ({(0, "fwd", 0, 1): [(2, 4), ([2, 3, 4], 8)]}, "not a mix"),
    ({(0, "fwd", 0, 1): [(5, 5)]}, "bit-width 5 not supported"),
    ({(0, "fwd", 2, 1): 8}, "layer 0 fwd 2->1, which the HaloPlan does not send"),
])
def test_from_groups_errors(groups, match):
    with pytest.raises(AdaqpInputError, match=match):
        BitPlan.from_groups(PAIR, L, groups, default_bits=8)


def test_from_groups_without_default_needs_every_channel():
    with pytest.raises(AdaqpInputError, match="no bit-widths for layer 0 fwd 0->2 \\(2 rows\\)"):
        BitPlan.from_groups(PAIR, L, {(0, "fwd", 0, 1): 8})


@pytest.mark.parametrize("key, values, match", [
    ((0, "bwd", 1, 0), [8, 8, 8], "layer 0 has no bwd exchange"),
    ((0, "up", 1, 0), [8], "direction must be 'fwd' or 'bwd'"),
    ((3, "fwd", 0, 1), [8], "layer 3 out of range"),
    ((0, "fwd", 1, 1), [8], "channel 1->1 invalid for 3 parts"),
    ((0, "fwd", 0, 1), [8, 8, 264, 8, 8], "bit-width 264 not supported"),  # no int8 wrap
    ((0, "fwd", 0, 1), [8.0] * 5, "must be integers"),
])
def test_constructor_refuses_bad_channels(key, values, match):
    bits = dict(BitPlan.uniform(PAIR, L, 8).bits)
    bits[key] = np.array(values)
    with pytest.raises(AdaqpInputError, match=match):
        BitPlan(L, 3, bits)


def test_constructor_requires_every_layer_to_match_layer0():
    bits = dict(BitPlan.uniform(PAIR, L, 8).bits)
    bits[(1, "fwd", 0, 1)] = np.full(6, 8)
    with pytest.raises(AdaqpInputError, match="6 rows for layer 1 fwd 0->1 but layer 0 fwd sends 5"):
        BitPlan(L, 3, bits)
    del bits[(1, "fwd", 0, 1)]
    with pytest.raises(AdaqpInputError, match="0 rows for layer 1 fwd 0->1 but layer 0 fwd sends 5"):
        BitPlan(L, 3, bits)


# ---- validation against the HaloPlan -------------------------------------------------------------
def test_validate_against_pair_rows():
    plan = BitPlan.uniform(PAIR, L, 4)
    assert plan.validate(PAIR, L) is plan
    other = PAIR.copy()
    other[0, 2] = 7
    with pytest.raises(AdaqpInputError, match="BitPlan has 2 rows for layer 0 fwd 0->2 but the HaloPlan sends 7"):
        plan.validate(other, L)
    other = PAIR.copy()
    other[2, 1] = 4
    with pytest.raises(AdaqpInputError, match="BitPlan has 0 rows for layer 0 fwd 2->1 but the HaloPlan sends 4"):
        plan.validate(other, L)
    with pytest.raises(AdaqpInputError, match="BitPlan has 3 layers but the model has 2"):
        plan.validate(PAIR, 2)
    with pytest.raises(AdaqpInputError, match="for 3 parts but the HaloPlan has 4"):
        plan.validate(np.zeros((4, 4), dtype=np.int64), L)
    with pytest.raises(AdaqpInputError, match="zero diagonal"):
        plan.validate(PAIR + np.eye(3, dtype=np.int64), L)


# ---- sizes ---------------------------------------------------------------------------------------
def test_nbytes_matches_row_by_row_sum():
    plan, F = mixed_plan(), 37
    for key in plan.channels():
        want = sum(row_nbytes(F, int(b)) for b in plan.channel(*key))
        assert plan.nbytes(*key, F) == want
    assert plan.nbytes(0, "fwd", 2, 0, F) == 0
    pn = plan.pair_nbytes(1, "bwd", F)
    assert pn.shape == (3, 3) and pn.dtype == np.int64
    assert pn[1, 0] == plan.nbytes(1, "bwd", 1, 0, F) and pn[0, 1] == plan.nbytes(1, "bwd", 0, 1, F)
    assert pn.sum() == sum(plan.nbytes(*k, F) for k in plan.channels() if k[:2] == (1, "bwd"))
    with pytest.raises(AdaqpInputError, match="feature width must be a positive integer"):
        plan.nbytes(0, "fwd", 0, 1, 0)


def test_histogram_counts_every_row():
    plan = mixed_plan()
    hist = plan.histogram()
    assert list(hist) == [(0, "fwd"), (1, "fwd"), (1, "bwd"), (2, "fwd"), (2, "bwd")]
    assert sum(sum(h.values()) for h in hist.values()) == plan.total_rows
    assert all(sum(h.values()) == 10 for h in hist.values())


# ---- files ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["plan", "plan.json", "plan.npz", "dir/"])
def test_save_load_round_trip(tmp_path, name):
    plan = mixed_plan()
    meta_path = plan.save(tmp_path / name)
    meta = json.loads(meta_path.read_text())
    assert meta["format"] == "adaqp.bitplan" and meta["version"] == 1 and meta["num_parts"] == 3
    assert meta["histogram"]["0/fwd"] == {str(b): n for b, n in plan.histogram()[(0, "fwd")].items()}
    loaded = BitPlan.load(tmp_path / name)
    assert loaded == plan and loaded.equals(plan) and loaded != BitPlan.uniform(PAIR, L, 8)
    assert not [f for f in meta_path.parent.iterdir() if f.name.endswith(".tmp")]


def test_single_part_plan_has_no_channels(tmp_path):
    plan = BitPlan.uniform(np.zeros((1, 1), dtype=np.int64), 2, 8)
    assert list(plan.channels()) == [] and plan.is_uniform() and plan.total_rows == 0
    assert BitPlan.load(plan.save(tmp_path / "p")) == plan


def test_load_errors(tmp_path):
    with pytest.raises(AdaqpInputError, match="file not found"):
        BitPlan.load(tmp_path / "missing")
    mixed_plan().save(tmp_path / "a")
    BitPlan.uniform(PAIR, L, 8).save(tmp_path / "b")
    (tmp_path / "b.npz").replace(tmp_path / "a.npz")
    with pytest.raises(AdaqpInputError, match="a.npz does not match .*a.json"):
        BitPlan.load(tmp_path / "a")
    (tmp_path / "a.npz").write_bytes(b"not a zip")
    with pytest.raises(AdaqpInputError, match="corrupt .npz"):
        BitPlan.load(tmp_path / "a")
    (tmp_path / "a.json").write_text("{")
    with pytest.raises(AdaqpInputError, match="corrupt JSON"):
        BitPlan.load(tmp_path / "a")
    (tmp_path / "a.json").write_text(json.dumps({"format": "adaqp.bitplan", "version": 99}))
    with pytest.raises(AdaqpInputError, match="version 99 not supported"):
        BitPlan.load(tmp_path / "a")
    (tmp_path / "a.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(AdaqpInputError, match="not a BitPlan file"):
        BitPlan.load(tmp_path / "a")


def test_repr_is_short():
    r = repr(mixed_plan())
    assert r.startswith("BitPlan(num_layers=3, num_parts=3, channels=15") and len(r) < 200
