"""A size the profile measured answers with its measurement, whatever model was fitted."""

import numpy as np
import pytest

from adaqp.costmodel.profile import MEASURED_REL, OpModel

# a line through the origin, 1 us per row; the point at 1,000 rows measured 2 ms (the line: 1 ms)
LINE = OpModel(("rows",), (1e-6,), points=({"rows": 1000, "median_s": 2e-3}, {"rows": 100_000, "median_s": 0.1}))


def test_a_measured_size_gives_its_median():
    assert LINE.seconds(rows=1000) == pytest.approx(2e-3, rel=1e-12)
    assert LINE.seconds(rows=100_000) == pytest.approx(0.1, rel=1e-12)


def test_a_size_within_the_tolerance_is_the_point_scaled_by_the_model():
    near = 1000 * (1 + MEASURED_REL / 2)
    assert LINE.seconds(rows=near) == pytest.approx(2e-3 * near / 1000, rel=1e-12)


def test_a_size_beyond_the_tolerance_is_the_model():
    far = 1000 * (1 + 2 * MEASURED_REL)
    assert LINE.seconds(rows=far) == pytest.approx(1e-6 * far, rel=1e-12)


def test_per_rank_arrays_mix_measured_and_modelled_sizes():
    got = LINE.seconds(rows=np.array([1000, 5000, 100_000]))
    assert got.tolist() == pytest.approx([2e-3, 5e-3, 0.1], rel=1e-12)


def test_every_shared_size_must_be_close():
    m = OpModel(("elements",), (1e-9,), points=({"rows": 100, "width": 10, "elements": 1000, "median_s": 5e-6},))
    assert m.seconds(rows=100, width=10, elements=1000) == pytest.approx(5e-6)
    assert m.seconds(rows=10, width=100, elements=1000) == pytest.approx(1e-6)  # same elements, other shape
