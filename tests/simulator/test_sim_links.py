"""Links as shared resources: exact drain times of flows on tiny cases (SimPy style)."""

import numpy as np
import pytest
import simpy

from adaqp.simulator.fluid import FluidNetwork, fifo_rates, max_min_rates

INF = np.inf


def _run(bw, flows, sharing="fair"):
    """flows: (start_s, hops, nbytes); returns each flow's drain time."""
    env = simpy.Environment()
    done = {}
    net = FluidNetwork(env, np.asarray(bw, float), lambda ids, _b: done.update({int(i): env.now for i in ids}),
                       sharing)

    def post(i, start, hops, nbytes):
        yield env.timeout(start)
        net.add(np.array([i]), np.array([hops]), np.array([float(nbytes)]))

    for i, (start, hops, nbytes) in enumerate(flows):
        env.process(post(i, start, hops, nbytes))
    env.run()
    return [done[i] for i in range(len(flows))]


def test_one_message_holds_the_link_bytes_over_bandwidth():
    assert _run([1e6], [(0.0, [0], 2e6)]) == [pytest.approx(2.0, rel=1e-12)]


def test_two_messages_on_one_fifo_link_finish_at_t_and_2t():
    t1, t2 = _run([1e6], [(0.0, [0], 1e6), (0.0, [0], 1e6)], sharing="fifo")
    assert (t1, t2) == (pytest.approx(1.0, rel=1e-12), pytest.approx(2.0, rel=1e-12))


def test_two_messages_on_one_fair_link_share_it():
    # posted together, each gets half the link: both finish at 2t
    assert _run([1e6], [(0.0, [0], 1e6), (0.0, [0], 1e6)]) == [pytest.approx(2.0, rel=1e-12)] * 2
    # the second posted at t/2: the first has half left at half speed -> 1.5t; the second 2t
    assert _run([1e6], [(0.0, [0], 1e6), (0.5, [0], 1e6)]) == [pytest.approx(1.5, rel=1e-12),
                                                                 pytest.approx(2.0, rel=1e-12)]


def test_a_flow_over_several_hops_moves_at_its_slowest_hop():
    # a fluid pipelines perfectly: 3 hops of 4, 1 and 2 MB/s carry 1 MB in exactly 1 s
    assert _run([4e6, 1e6, 2e6], [(0.0, [0, 1, 2], 1e6)]) == [pytest.approx(1.0, rel=1e-12)]


def test_max_min_gives_what_a_flow_cannot_use_to_the_others():
    # A crosses r0 (1 B/s) and r1 (3 B/s); B only r1: A is held to 1 by r0, B takes the other 2
    hops = np.array([[0, 1], [1, 2]])  # 2 = padding
    rate, bott = max_min_rates(hops, np.array([1.0, 3.0, INF]))
    assert rate.tolist() == [1.0, 2.0] and bott.tolist() == [0, 1]
    # and the drain times follow: A (1 B) at 1 s; B (4 B) 2 B by 1 s, then 2 B at 3 B/s
    t = _run([1.0, 3.0], [(0.0, [0, 1], 1.0), (0.0, [1], 4.0)])
    assert t == [pytest.approx(1.0), pytest.approx(1.0 + 2.0 / 3.0)]


def test_fifo_lets_a_blocked_message_leave_its_other_hops_to_later_ones():
    # first: r0 -> r1; second: r1 only; r0 slower, so the second takes r1's remainder
    rate, _ = fifo_rates(np.array([[0, 1], [1, 1]]), np.array([1.0, 3.0]))
    assert rate.tolist() == [1.0, 2.0]


def test_flows_started_at_one_instant_cost_one_rate_update():
    env = simpy.Environment()
    net = FluidNetwork(env, np.array([1e6, 1e6]), lambda *_: None)
    for i in range(10):
        net.add(np.array([i]), np.array([[i % 2]]), np.array([1e3]))
    env.run()
    assert net.updates == 1  # all ten drain together at 5 ms


def test_merge_rel_drains_nearly_done_flows_together():
    flows = [(0.0, [0], 1.0e6), (0.0, [0], 1.0005e6)]
    exact = _run([1e6], flows)
    assert exact == [pytest.approx(2.0), pytest.approx(2.0005)]
    env = simpy.Environment()
    done = {}
    net = FluidNetwork(env, np.array([1e6]), lambda ids, _b: done.update({int(i): env.now for i in ids}),
                       merge_rel=1e-3)
    net.add(np.array([0, 1]), np.array([[0], [0]]), np.array([f[2] for f in flows]))
    env.run()
    # the second had 0.05 % of its bytes left when the first drained: it drains with it
    assert done == {0: pytest.approx(2.0), 1: pytest.approx(2.0)} and net.updates == 1


def _run_bucket(flows, burst=0.5e6):
    """Endpoint resource 0 (4 MB/s) then a shaped NIC 1 (1 MB/s, ``burst`` bytes of tokens)."""
    env = simpy.Environment()
    done = {}
    net = FluidNetwork(env, np.array([4e6, 1e6]), lambda ids, _b: done.update({int(i): env.now for i in ids}),
                       burst_bytes=np.array([0.0, burst]))

    def post(i, start, nbytes):
        yield env.timeout(start)
        net.add(np.array([i]), np.array([[0, 1]]), np.array([float(nbytes)]))

    for i, (start, nbytes) in enumerate(flows):
        env.process(post(i, start, nbytes))
    env.run()
    return [done[i] for i in range(len(flows))], net


def test_a_message_within_the_bucket_passes_at_the_rest_of_the_paths_speed():
    # 0.4 MB < 0.5 MB of tokens: the endpoint's 4 MB/s is the only limit
    assert _run_bucket([(0.0, 0.4e6)])[0] == [pytest.approx(0.1, rel=1e-12)]


def test_a_message_past_the_bucket_drains_it_then_moves_at_the_rate():
    # 4 MB/s while tokens last; they drain at 4 - 1 = 3 MB/s: empty at 1/6 s with 2/3 MB sent,
    # the other 5/6 MB at 1 MB/s: done at exactly 1 s (without a bucket: 1.5 s)
    (t,), net = _run_bucket([(0.0, 1.5e6)])
    assert t == pytest.approx(1.0, rel=1e-12) and net.updates == 2
    assert _run_bucket([(0.0, 1.5e6)], burst=0.0)[0] == [pytest.approx(1.5, rel=1e-12)]


def test_the_bucket_refills_at_the_rate_while_the_link_idles():
    # the first message empties the bucket at 1 s; 0.2 s idle refill 0.2 MB; the second (0.6 MB)
    # at 1.2 s: 4 MB/s until the 0.2 MB are spent (1/15 s, 4/15 MB sent), then 1/3 MB at 1 MB/s
    (t1, t2), _ = _run_bucket([(0.0, 1.5e6), (1.2, 0.6e6)])
    assert (t1, t2) == (pytest.approx(1.0, rel=1e-12), pytest.approx(1.6, rel=1e-12))


def test_a_bucket_never_holds_more_than_its_burst():
    # idle for 10 s: still only 0.5 MB of tokens, so the second message takes as long as the first
    (t1, t2), _ = _run_bucket([(0.0, 1.5e6), (11.0, 1.5e6)])
    assert (t1, t2) == (pytest.approx(1.0, rel=1e-12), pytest.approx(12.0, rel=1e-12))


def test_a_negative_bucket_is_refused():
    from adaqp.errors import AdaqpInputError

    with pytest.raises(AdaqpInputError, match="burst_bytes"):
        FluidNetwork(simpy.Environment(), np.array([1e6]), lambda *_: None, burst_bytes=np.array([-1.0]))


def _run_crowd(flows, crowd=(1.0, 1.0, 0.8)):
    """Two NICs of 1 MB/s: 0 = nic_out, 1 = nic_in of one node (partners); crowd[n] with n =
    min(flows out, flows in) in flight. flows: (hops, nbytes), all posted at 0."""
    env = simpy.Environment()
    done = {}
    net = FluidNetwork(env, np.array([1e6, 1e6]), lambda ids, _b: done.update({int(i): env.now for i in ids}),
                       partner=np.array([1, 0]), crowd=np.array(crowd))
    net.add(np.arange(len(flows)), np.array([h for h, _ in flows]), np.array([float(b) for _, b in flows]))
    env.run()
    return [done[i] for i in range(len(flows))]


def test_two_flows_each_way_share_a_crowded_nic():
    # 2 out, 2 in: each side carries 0.8 MB/s, 0.4 MB/s per flow: 0.4 MB in exactly 1 s
    t = _run_crowd([([0], 0.4e6), ([0], 0.4e6), ([1], 0.4e6), ([1], 0.4e6)])
    assert t == [pytest.approx(1.0, rel=1e-12)] * 4


def test_flows_one_way_only_keep_the_full_rate():
    # 2 out, 0 in: n = 0, the full 1 MB/s: 0.5 MB each in 1 s (as with no crowding)
    assert _run_crowd([([0], 0.5e6), ([0], 0.5e6)]) == [pytest.approx(1.0, rel=1e-12)] * 2
    # one each way (a ring's node): full rate too
    assert _run_crowd([([0], 1e6), ([1], 1e6)]) == [pytest.approx(1.0, rel=1e-12)] * 2


def test_a_crowd_that_thins_gives_the_rest_the_full_rate():
    # out: 0.1 MB and 0.5 MB; in: 0.5 MB and 0.5 MB. Crowded (0.4 MB/s per flow) until the small
    # out-flow drains at 0.25 s; then n = min(1, 2) = 1: out 1 MB/s to its one flow, in 0.5 each.
    # out-flow 2: 0.4 MB left at 1 MB/s -> 0.65 s; in-flows: 0.4 MB left each at 0.5 -> 1.05 s
    t = _run_crowd([([0], 0.1e6), ([0], 0.5e6), ([1], 0.5e6), ([1], 0.5e6)])
    assert t == [pytest.approx(0.25, rel=1e-12), pytest.approx(0.65, rel=1e-12),
                 pytest.approx(1.05, rel=1e-12), pytest.approx(1.05, rel=1e-12)]


def test_crowd_beyond_the_table_takes_its_last_share():
    # 3 each way with crowd measured up to 2: the share at 2 (0.8): 0.8/3 MB/s per flow
    t = _run_crowd([([0], 0.8e6)] * 3 + [([1], 0.8e6)] * 3)
    assert t == [pytest.approx(3.0, rel=1e-12)] * 6


def test_a_bad_crowd_table_is_refused():
    from adaqp.errors import AdaqpInputError

    with pytest.raises(AdaqpInputError, match="crowd"):
        FluidNetwork(simpy.Environment(), np.array([1e6]), lambda *_: None, crowd=np.array([1.0, 0.0]))
    with pytest.raises(AdaqpInputError, match="partner"):
        FluidNetwork(simpy.Environment(), np.array([1e6]), lambda *_: None, partner=np.array([0, 1]))
