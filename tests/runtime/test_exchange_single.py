"""The exchanger's bookkeeping on one rank: buffers sized from the plan, ranges traced on request."""

import numpy as np
import torch

from adaqp.graph import Graph
from adaqp.halo import build_halo_plan
from adaqp.partition import partition_graph
from adaqp.plans import BitPlan
from adaqp.runtime.exchange import HaloExchanger


class _Loopback:
    """A 1-rank stand-in for the transport: copies send to recv (all splits must be local)."""

    def all_to_all(self, recv, send, recv_splits, send_splits, async_op):
        recv.copy_(send)

        class _W:
            def wait(self):
                return None
        return _W()


def _plan(parts):
    rng = np.random.default_rng(0)
    n = 60
    ei = rng.integers(0, n, (2, 300))
    g = Graph.from_edge_index("t", ei, rng.standard_normal((n, 5)).astype(np.float32), rng.integers(0, 3, n),
                              *[np.ones(n, bool)] * 3, make_undirected=True)
    return build_halo_plan(g, partition_graph(g, parts, method="random"))


def test_buffer_sizes_follow_the_bitplan():
    plan = _plan(3)
    halo = plan.ranks[1]
    bp = BitPlan.uniform(plan.pair_rows(), 2, 4)
    ex = HaloExchanger(halo, [5, 7], _Loopback(), torch.device("cpu"), bp, quantize=True)
    for (layer, d) in bp.exchanges():
        sent = sum(bp.nbytes(layer, d, 1, p, [5, 7][layer]) for p in range(3) if p != 1)
        got = sum(bp.nbytes(layer, d, p, 1, [5, 7][layer]) for p in range(3) if p != 1)
        assert ex.channel_nbytes(layer, d) == (sent, got)
    fp32 = HaloExchanger(halo, [5, 7], _Loopback(), torch.device("cpu"))
    assert fp32.channel_nbytes(0, "fwd")[0] == int(halo.send_ptr[-1]) * 5 * 4


def test_single_rank_roundtrip_and_range_tracing():
    plan = _plan(1)
    ex = HaloExchanger(plan.ranks[0], [5], _Loopback(), torch.device("cpu"))
    h = torch.randn(plan.ranks[0].num_inner, 5)
    assert ex.finish(ex.start(0, "fwd", h, async_op=False)).shape == (0, 5)  # one part: empty halo

    plan = _plan(2)
    halo = plan.ranks[0]
    ex = HaloExchanger(halo, [5], _Loopback(), torch.device("cpu"))
    ex.trace_ranges = True
    h = torch.randn(halo.num_inner, 5)
    ex.start(0, "fwd", h, async_op=False)
    sent = h[torch.as_tensor(halo.send_local[halo.send_ptr[1]:halo.send_ptr[2]])]
    assert torch.equal(ex.row_ranges[(0, "fwd", 0, 1)], sent.amax(1) - sent.amin(1))
