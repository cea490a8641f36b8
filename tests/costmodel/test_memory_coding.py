"""The eager coding's temporaries in the memory model (costmodel/memory.py): the bytes per
element counted against the code itself, and the coding moments by hand."""

import numpy as np
import pytest
import torch

from adaqp import message
from adaqp.costmodel import memory as M
from adaqp.costmodel.program import ModelShape
from adaqp.costmodel.workload import PlanStats
from adaqp.rng import KeyStream
from helpers.livebytes import LiveBytes

R, F = 4000, 64


def _peak_per_element(call) -> float:
    with LiveBytes() as m:
        y = call()
    del y
    return m.peak / (R * F)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_encode_and_decode_bytes_are_what_the_code_holds(bits):
    """Forward messages are gathered from the inner rows by index; backward ones are a slice."""
    x = torch.randn(2 * R, F)
    index = torch.randperm(2 * R)[:R]
    rb = torch.full((R,), bits, dtype=torch.int64)
    plan = message.message_plan(rb, F, x.device)
    buf = message.pack_message(x[:R], rb, KeyStream(0), check=False, plan=plan)
    rows = x[:R].clone()
    got = {"fwd": _peak_per_element(lambda: message.pack_message(x, rb, KeyStream(1), check=False, out=buf,
                                                                    index=index, plan=plan)),
           "bwd": _peak_per_element(lambda: message.pack_message(rows, rb, KeyStream(2), check=False, out=buf,
                                                                    plan=plan)),
           "dec": _peak_per_element(lambda: message.unpack_message(buf, rb, F, plan=plan))}
    # the model counts bytes per element; per-row headers and group ids add well under one
    assert got["fwd"] == pytest.approx(M.EAGER_ENCODE_B["fwd"], abs=0.5), got
    assert got["bwd"] == pytest.approx(M.EAGER_ENCODE_B["bwd"], abs=0.5), got
    assert got["dec"] == pytest.approx(M.EAGER_DECODE_B[bits], abs=0.5), got


# two ranks, 100 inner rows each; rank 0 sends 90 rows to rank 1 and receives 80: coding outweighs
STATS = PlanStats(inner=np.array([100, 100]), central=np.array([10, 20]), marginal=np.array([90, 80]),
                  halo=np.array([80, 90]), nnz_central=np.array([30, 40]), nnz_marginal=np.array([300, 280]),
                  nnz_marginal_halo=np.array([200, 210]), pair_rows=np.array([[0, 90], [80, 0]]))
GCN = ModelShape("gcn", (10, 8, 3), layer_norm=False, dropout=True)


def test_coding_moments_by_hand():
    n, h, s, a = 100, 80, 90, 10  # rank 0, layer 0 (10 wide): encodes 90 rows, decodes 80
    encode = 4 * n * a + n * a + 29 * a * s
    decode = 4 * n * a + n * a + 4 * h * a + 9 * a * h
    work = M._coding_work(STATS, GCN, 2, np.array([n, n]), np.array([h, 90]), np.array([s, 80]))
    assert work[(0, "fwd")][0] == max(encode, decode)
    b, a1 = 3, 8  # layer 1 backward: gradients of the 80 halo rows back to rank 1, 90 received back
    encode = 4 * (n * b + a1 * (n + h)) + 25 * a1 * h
    decode = 4 * (n * b + a1 * (n + h)) + 4 * s * a1 + 9 * a1 * s
    assert work[(1, "bwd")][0] == max(encode, decode)
    eager = M.memory_terms(STATS, GCN, 2, eager_coding=True)["activations"]
    assert np.all(eager > M.memory_terms(STATS, GCN, 2)["activations"])  # the coding is the peak here


def test_fp32_messages_and_fused_kernels_add_nothing():
    fp32, plain = M.memory_terms(STATS, GCN, 32, eager_coding=True), M.memory_terms(STATS, GCN, 32)
    assert all(np.array_equal(fp32[k], plain[k]) for k in plain)
    assert M._coding_work(STATS, GCN, 32, *(np.array([100, 100]),) * 3) == {}
    gpu, cpu = M.peak_memory_bytes(STATS, GCN, 2, "cuda"), M.peak_memory_bytes(STATS, GCN, 2, "cpu")
    assert np.allclose(gpu, sum(M.memory_terms(STATS, GCN, 2).values()))
    assert np.all(cpu > gpu * M.CPU_ALLOCATOR_SLACK + M.CPU_RANK_OVERHEAD_BYTES)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_the_tracker_counts_new_storages_until_collected():
    """The counter the coding bytes rest on: dense and sparse results, views and in-place ops."""
    x = torch.ones(1000)
    with LiveBytes() as m:
        y = x * 2  # 4,000 B new
        v = y[:10]  # a view: nothing new
        y.add_(1)  # in place: nothing new
        del y, v  # collected: back to 0
        crow, col, val = torch.tensor([0, 1, 2]), torch.tensor([0, 1]), torch.ones(2)
        s = torch.sparse_csr_tensor(crow, col, val, (2, 2), check_invariants=True) * 3  # a new CSR tensor: its three arrays
        live_sparse = m.live
    assert m.peak == max(4000, live_sparse) and live_sparse >= 3 * 8 + 2 * 8 + 2 * 4
    del s


@pytest.mark.parametrize("model", ["gcn", "sage"])
def test_layer_0_backward_allocates_no_gradient_of_the_input(model):
    """The model's layer-0 backward holds only the output's gradients: the features need none, so
    autograd computes no gradient of width ``w0`` (one would be 4 n w0 bytes)."""
    from adaqp.data.spec import load_dataset
    from adaqp.runtime.model import GNN, ModelConfig
    from adaqp.runtime.reference import FullGraphAggregator

    g = load_dataset("sbm:nodes=1000,classes=4,feat=512,deg=6,seed=1")
    net = GNN(ModelConfig(model, layers=2, hidden=16), g.num_features, g.num_classes)
    logits = net(torch.as_tensor(g.features), FullGraphAggregator(g))
    loss = logits.sum()
    with LiveBytes() as m:
        loss.backward()
    one_input_gradient = 4 * g.num_nodes * g.num_features
    assert m.peak < one_input_gradient / 4, (m.peak, one_input_gradient)
