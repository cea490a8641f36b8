"""The late-peer benchmark's worker on loopback ranks: every size timed both ways."""

from adaqp.experiments.late_peer import worker
from adaqp.runtime.launch import spawn


def test_worker_times_each_size_aligned_and_free_the_same_on_every_rank():
    cfg = {"sizes": [64, 4096], "spmms": 1, "steps": 3}
    got = spawn(worker, 2, (cfg,), env={"OMP_NUM_THREADS": "1"}, timeout_s=120.0)
    assert set(got[0]) == {"aligned:64", "free:64", "aligned:4096", "free:4096"}
    assert got[0] == got[1]  # the MAX over the ranks, reduced before the median
    assert all(0.0 < t < 5.0 for t in got[0].values())
