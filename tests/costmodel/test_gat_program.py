"""GAT in the cost model: its program asks for the ops the runtime runs, at the runtime's sizes;
parameters, overlap and the input layer's backward are placed as the runtime places them; the
solver weighs GAT's rows by the mean-aggregation score."""

import numpy as np
import pytest

from adaqp.costmodel.gat_ops import GATOps
from adaqp.costmodel.profile import load_profile, record_ops
from adaqp.costmodel.program import Compute, Exchange, ModelShape, build_program
from adaqp.costmodel.workload import PlanStats
from adaqp.data.spec import load_dataset
from adaqp.errors import AdaqpInputError
from adaqp.halo import build_halo_plan
from adaqp.partition import partition_graph
from adaqp.runtime.attention_halo import RankBlocks
from adaqp.runtime.model import GNN, ModelConfig
from adaqp.solver.groups import channel_scores

GAT = ModelConfig("gat", layers=2, hidden=4, dropout=0.5, layer_norm=True, heads=3, out_heads=2, attn_dropout=0.3)


@pytest.fixture(scope="module")
def plan():
    g = load_dataset("sbm:nodes=300,classes=4,feat=12,deg=6,seed=3")
    return build_halo_plan(g, partition_graph(g, 2, "metis", 0))


@pytest.mark.parametrize("cfg", [GAT, ModelConfig("gat", 3, 5, layer_norm=False, heads=2),
                                 ModelConfig("gcn", 3, 7), ModelConfig("sage", 2, 7, layer_norm=False)])
def test_parameter_count_equals_the_runtime_model(cfg):
    shape = ModelShape.of(cfg, 12, 4)
    assert shape.num_params == sum(p.numel() for p in GNN(cfg, 12, 4).parameters())


def test_the_program_asks_for_the_runtime_sizes(plan):
    """Each GEMM and each aggregation at the row and edge counts of the runtime's blocks (self
    loops included), at the widths of its heads."""
    stats, shape = PlanStats.from_halo_plan(plan), ModelShape.of(GAT, 12, 4)
    assert shape.widths == (12, 12, 4) and shape.gat_heads(0) == (3, 4) and shape.gat_heads(1) == (2, 4)
    with record_ops() as calls:
        build_program(stats, shape, "vanilla", load_profile("cpu-2core"))
    blocks = [RankBlocks(rh, "cpu") for rh in plan.ranks]
    central = np.array([b.central.nnz for b in blocks])
    marginal = np.array([b.marginal.nnz for b in blocks])
    gemms = [(tuple(np.atleast_1d(s["rows"])), s["in_dim"], s["out_dim"]) for op, s in calls if op == "gemm_fwd"]
    inner, halo = tuple(stats.inner), tuple(stats.halo)
    assert gemms == [(inner, 12, 12), (halo, 12, 12), (inner, 12, 8), (halo, 12, 8)]
    spmm = {(tuple(np.atleast_1d(s["nnz"])), s["width"]) for op, s in calls if op == "spmm_fwd"}
    for layer, hc in ((0, 12), (1, 8)):
        heads = shape.gat_heads(layer)[0]
        for nnz in (central, marginal):  # the softmax's gathers at the heads, the aggregation at heads x C
            assert (tuple(nnz), heads) in spmm and (tuple(nnz), hc) in spmm
    assert any(op == "dropout" and np.all(np.atleast_1d(s["width"]) == 3) for op, s in calls)  # attention


def test_overlap_hides_the_central_attention_and_the_input_layer_has_no_backward_exchange(plan):
    stats, shape = PlanStats.from_halo_plan(plan), ModelShape.of(GAT, 12, 4)
    prof = load_profile("cpu-2core")
    prog = build_program(stats, shape, "overlap", prof, interference=1.0)
    exchanges = [s for s in prog if isinstance(s, Exchange)]
    assert [(e.traffic.layer, e.traffic.direction) for e in exchanges] == [(0, "fwd"), (1, "fwd"), (1, "bwd")]
    ops = GATOps(prof, stats, shape)
    assert np.allclose(exchanges[0].hidden, ops.central(0))
    assert np.allclose(exchanges[2].hidden, ops.central(1, backward=True))
    # after the last exchange, layer 0's attention backward still runs (its weights need it)
    tail = [s for s in prog[prog.index(exchanges[2]) + 1:] if isinstance(s, Compute)]
    assert any(np.allclose(s.seconds, ops.central(0, backward=True)) for s in tail)
    vanilla = build_program(stats, shape, "vanilla", prof)
    total = lambda p: sum(s.seconds.max() for s in p if isinstance(s, Compute))  # noqa: E731
    assert total(vanilla) > total(prog)  # the hidden central work left the compute steps


def test_gat_rows_are_weighted_by_the_mean_aggregation_score(plan):
    gat, sage, gcn = (channel_scores(plan, m) for m in ("gat", "sage", "gcn"))
    assert gat.keys() == sage.keys() and all(np.array_equal(gat[k], sage[k]) for k in gat)
    assert any(not np.array_equal(gat[k], gcn[k]) for k in gat)
    with pytest.raises(AdaqpInputError):
        channel_scores(plan, "gin")


def test_shapes_refuse_heads_for_other_models():
    with pytest.raises(AdaqpInputError):
        ModelShape("gcn", (12, 8, 4), heads=2)
    with pytest.raises(AdaqpInputError):
        ModelShape("gat", (12, 10, 4), heads=3)  # 10 features are not 3 heads


def test_validate_grid_and_its_shapes_take_gat():
    from adaqp.experiments.validate import Grid, model_shape, train_configs

    grid = Grid(datasets=("sbm:nodes=300,classes=4,feat=12,deg=6,seed=3",), models=("gat",), hiddens=(8,),
                schedules=("vanilla",), bits=("4",), ranks=(2,), links=(None,))
    cfg = train_configs(grid, grid.datasets[0], 2, None)[0]
    shape = model_shape(cfg, load_dataset(grid.datasets[0]))
    assert shape.model == "gat" and shape.heads == 8 and shape.widths == (12, 64, 64, 4)
