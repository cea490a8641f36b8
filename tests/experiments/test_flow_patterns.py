"""The flow-pattern benchmark: its patterns, its fluid reference and its worker on loopback ranks."""

import numpy as np
import pytest

from adaqp.experiments.flow_patterns import fluid_s, patterns, worker
from adaqp.runtime.launch import spawn


def test_patterns_have_the_flows_their_names_say():
    p = patterns(4, 10)
    out_in = {k: ((m > 0).sum(1).tolist(), (m > 0).sum(0).tolist()) for k, m in p.items()}
    assert out_in["0 -> every other"] == ([3, 0, 0, 0], [0, 1, 1, 1])
    assert out_in["star 0<->1, 0<->2"] == ([2, 1, 1, 0], [2, 1, 1, 0])
    assert out_in["ring"] == ([1] * 4, [1] * 4)
    assert out_in["all-to-all"] == ([3] * 4, [3] * 4)
    assert all(np.diag(m).sum() == 0 and set(np.unique(m)) <= {0, 10} for m in p.values())


@pytest.mark.parametrize("name, flows_per_link", [
    ("one flow 0->1", 1), ("ring", 1), ("0 -> every other", 2), ("star 0<->1, 0<->2", 2), ("all-to-all", 2)])
def test_fluid_reference_is_the_busiest_link_at_the_full_rate(name, flows_per_link):
    # 3 hosts, 1 MB per flow at 1 MB/s per NIC side: the busiest side's flows, one second each
    assert fluid_s(patterns(3, 1_000_000)[name], 1e6) == pytest.approx(flows_per_link, rel=1e-12)


def test_worker_times_every_pattern_the_same_on_every_rank():
    cfg = {"patterns": {k: v.tolist() for k, v in patterns(3, 256).items()}, "reps": 2}
    got = spawn(worker, 3, (cfg,), timeout_s=120.0)
    assert set(got[0]) == set(cfg["patterns"]) and got[0] == got[1] == got[2]  # MAX over the ranks
    assert all(0.0 < t < 5.0 for t in got[0].values())
