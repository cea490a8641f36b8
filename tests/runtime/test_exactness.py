"""At fp32 the distributed forward output and every gradient equal the single-process ones.

One process group per world size runs every (model, schedule, partitioner) combination, so
the 32 checks cost four spawns.
"""

import itertools

import pytest

from adaqp.runtime.config import TrainConfig
from adaqp.runtime.launch import spawn
from adaqp.runtime.model import ModelConfig
from adaqp.runtime.selfcheck import compare
from adaqp.runtime.prepare import prepare_plan

DATASET = "sbm:nodes=300,classes=4,feat=12,deg=6,seed=3"
TOL = 1e-5


def _jobs(world, tmp_path, grid):
    cfgs, jobs = [], []
    for model, schedule, method, bits in grid:
        cfg = TrainConfig(dataset=DATASET, nprocs=world, schedule=schedule, bits=bits, partition_method=method,
                          model=ModelConfig(model=model, layers=3, hidden=16, dropout=0.0, layer_norm=True),
                          progress=False, seed=world)
        plan_dir = tmp_path / f"{method}"
        if not (plan_dir / "halo_plan.json").exists():
            prepare_plan(cfg, plan_dir)
        cfgs.append(cfg)
        jobs.append((cfg.to_dict(), str(plan_dir)))
    return cfgs, jobs


def _check(world, tmp_path, grid, tol):
    cfgs, jobs = _jobs(world, tmp_path, grid)
    results = spawn("adaqp.runtime.selfcheck:distributed_pass_many", world, (jobs,))
    diffs = []
    for i, (cfg, combo) in enumerate(zip(cfgs, grid)):
        diff = compare(cfg, [results[r][i] for r in range(world)])
        assert diff["out_scale"] > 0.1 and diff["grad_scale"] > 1e-3  # not a vacuous comparison
        assert diff["max_abs_out_diff"] <= tol, (combo, diff)
        assert diff["max_abs_grad_diff"] <= tol, (combo, diff)
        diffs.append(diff)
    return diffs


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_fp32_distributed_equals_single_process(world, tmp_path):
    grid = list(itertools.product(("gcn", "sage"), ("vanilla", "overlap"), ("metis", "random"), ("32",)))
    _check(world, tmp_path, grid, TOL)


def test_quantized_schedules_at_32_bits_are_exact_and_at_8_bits_close(tmp_path):
    # 'quant'/'adaqp' with a 32-bit BitPlan take the packing path yet must stay exact;
    # 8-bit messages must stay close (unbiased noise of at most one step per value).
    exact = [("gcn", "quant", "metis", "32"), ("sage", "adaqp", "random", "32")]
    _check(3, tmp_path, exact, TOL)
    close = [("gcn", "quant", "metis", "8"), ("sage", "adaqp", "random", "8")]
    for diff in _check(3, tmp_path / "q8", close, 0.05):
        assert diff["max_abs_out_diff"] > 1e-4  # the messages really were quantized


def test_multilabel_graph_is_exact_too(tmp_path):
    """Sigmoid loss over [N, C] 0/1 labels (GraphSAINT Yelp/Amazon layout)."""
    import numpy as np

    from adaqp.data.spec import load_dataset
    from adaqp.graph import Graph

    g = load_dataset(DATASET)
    rng = np.random.default_rng(0)
    labels = (rng.random((g.num_nodes, 5)) < 0.3).astype(np.float32)
    path = Graph(g.name, g.indptr, g.indices, g.features, labels, g.train_mask, g.val_mask,
                 g.test_mask).save(tmp_path / "ml.npz")
    cfg = TrainConfig(dataset=str(path), nprocs=2, schedule="overlap", progress=False,
                      model=ModelConfig(model="gcn", layers=2, hidden=8, dropout=0.0))
    prepare_plan(cfg, tmp_path / "plan")
    results = spawn("adaqp.runtime.selfcheck:distributed_pass", 2, (cfg.to_dict(), str(tmp_path / "plan")))
    diff = compare(cfg, results)
    assert diff["max_abs_out_diff"] <= TOL and diff["max_abs_grad_diff"] <= TOL
