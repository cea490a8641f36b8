"""The host-delay benchmark's summary: who waited, who posted last, from hand-made stamps."""

import pytest

from adaqp.experiments.host_delay import summarise


def test_waiting_ranks_and_last_poster_are_told_apart():
    # step 1: rank 1 posts last (at 2.0), rank 0 gets out at 2.5, rank 1 at 2.1;
    # step 2: rank 0 posts last (at 5.0), rank 0 out at 5.2, rank 1 at 5.9
    got = [{"stamps": [(1.0, 1.0, 2.5), (3.0, 5.0, 5.2)], "bare_s": 0.5},
           {"stamps": [(2.0, 2.0, 2.1), (1.0, 4.0, 5.9)], "bare_s": 0.7}]
    s = summarise(got)
    assert s["waiting_ms"] == pytest.approx(700.0)  # medians of 500 and 900 ms
    assert s["last_poster_ms"] == pytest.approx(150.0)  # of 100 and 200 ms
    assert s["spmm_alone_ms"] == pytest.approx(600.0)
    assert s["spmm_after_exchange_ms"] == pytest.approx(1500.0)  # of 1, 3, 2, 1 s
