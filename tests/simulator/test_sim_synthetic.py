"""PlanStats from counts alone: the sizes add up and follow the documented assumptions."""

import numpy as np
import pytest

from adaqp.errors import AdaqpInputError
from adaqp.simulator import synthetic_stats


def test_sizes_add_up():
    s = synthetic_stats(10_003, 200_000, 4, 0.25)
    assert s.inner.sum() == 10_003 and s.inner.max() - s.inner.min() <= 1
    assert np.array_equal(s.central + s.marginal, s.inner)
    assert s.nnz_marginal_halo.sum() == pytest.approx(50_000, abs=4)
    assert (s.nnz_central + s.nnz_marginal).sum() == pytest.approx(200_000, abs=8)
    assert np.all(np.diag(s.pair_rows) == 0) and np.array_equal(s.halo, s.pair_rows.sum(0))
    # 50 000 cut edges over 12 ordered pairs: ~4167 edges from ~2500 nodes -> n (1 - e^(-e/n)) distinct
    n, e = 10_003 / 4, 50_000 / 12
    assert s.pair_rows[0, 1] == pytest.approx(n * (1 - np.exp(-e / n)), abs=1)


def test_one_part_has_no_halo_and_jitter_keeps_the_totals():
    one = synthetic_stats(1000, 5000, 1, 0.5)
    assert one.halo.tolist() == [0] and one.marginal.tolist() == [0] and one.nnz_central.tolist() == [5000]
    a = synthetic_stats(100_000, 2_000_000, 8, 0.3, jitter=0.8, seed=2)
    assert a.nnz_marginal_halo.sum() == pytest.approx(600_000, abs=8)
    assert a.pair_rows[~np.eye(8, dtype=bool)].std() > 0
    assert np.array_equal(a.pair_rows, synthetic_stats(100_000, 2_000_000, 8, 0.3, jitter=0.8, seed=2).pair_rows)


@pytest.mark.parametrize("args", [(10, 100, 20, 0.1), (100, 100, 2, 1.5), (100, -1, 2, 0.1)])
def test_bad_counts_are_refused(args):
    with pytest.raises(AdaqpInputError):
        synthetic_stats(*args)
