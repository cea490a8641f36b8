"""The sync benchmark's statistic: paired blocks, so that a slow spell of the machine moves the
pairs it falls on, not the figure."""

import pytest

from adaqp.runtime.profiling.ranks import paired_extra


def test_paired_extra_is_the_median_difference_less_the_idle_cost():
    pairs = [(1.0e-3, 1.5e-3)] * 5
    gap, extra = paired_extra(pairs, idle=[0.1e-3, 0.1e-3, 0.3e-3])
    assert gap == pytest.approx(1.0e-3)
    assert extra == pytest.approx(0.4e-3)


def test_a_slow_spell_on_a_few_pairs_leaves_the_figure():
    calm = [(1.0e-3, 1.5e-3)] * 16
    # four pairs inside a spell where one rank ran at half speed: both blocks slower, the loaded
    # one (every rank waits for the slow one) by more
    spell = [(2.0e-3, 4.0e-3)] * 4
    gap, extra = paired_extra(calm + spell, idle=[0.0])
    assert gap == pytest.approx(1.0e-3)
    assert extra == pytest.approx(0.5e-3)
    # the same blocks timed as two whole loops (means) would say 0.8 ms
    bare = sum(b for b, _ in calm + spell) / 20
    loaded = sum(lo for _, lo in calm + spell) / 20
    assert loaded - bare == pytest.approx(0.8e-3)


def test_extra_is_never_negative():
    assert paired_extra([(2.0e-3, 1.9e-3)] * 3, idle=[0.0]) == (pytest.approx(2.0e-3), 0.0)
