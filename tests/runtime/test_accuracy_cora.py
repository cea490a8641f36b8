"""Cora, 2-layer GCN, 16 hidden, the published hyper-parameters (Kipf & Welling: 81.5 %).

2 ranks: vanilla reaches >= 80 % test accuracy; adaqp with 2-bit messages stays within one point
of vanilla, averaged over 2 seeds. All four runs share one process group (one spawn).
"""

import statistics

from adaqp.runtime.config import TrainConfig
from adaqp.runtime.launch import spawn
from adaqp.runtime.model import ModelConfig
from adaqp.runtime.run import summarize
from adaqp.runtime.prepare import prepare_plan

SEEDS = range(2)


def test_cora_accuracy_vanilla_and_2bit_adaqp(tmp_path):
    base = dict(dataset="cora", nprocs=2, model=ModelConfig("gcn", 2, 16, 0.5, False), epochs=200,
                lr=0.01, weight_decay=5e-4, feature_norm="row", eval_every=200, progress=False)
    cfgs = [TrainConfig(**base, schedule=s, bits=b, seed=seed)
            for s, b in (("vanilla", "32"), ("adaqp", "2")) for seed in SEEDS]
    prepare_plan(cfgs[0], tmp_path)
    res = spawn("adaqp.runtime.trainer:train_many", 2, ([c.to_dict() for c in cfgs], str(tmp_path)))
    acc = {}
    for i, c in enumerate(cfgs):
        runs = [res[r][i] for r in range(2)]
        s = summarize(c, [x for run in runs for x in run["records"]], runs[0]["evals"])
        acc.setdefault(c.schedule, []).append(s["test_acc"])
    vanilla, adaqp = statistics.mean(acc["vanilla"]), statistics.mean(acc["adaqp"])
    print(f"cora test accuracy over {len(SEEDS)} seeds: vanilla {vanilla:.4f} {acc['vanilla']}, "
          f"adaqp 2-bit {adaqp:.4f} {acc['adaqp']}")
    assert vanilla >= 0.80
    assert abs(adaqp - vanilla) <= 0.01
