"""Cora, 2-layer GCN, 16 hidden, the published hyper-parameters (Kipf & Welling: 81.5 %), as the
``kipf`` preset gives them to ``adaqp train``.

2 ranks: vanilla reaches >= 80 % test accuracy; adaqp with 2-bit messages stays within one point
of vanilla, averaged over 2 seeds. All four runs share one process group (one spawn). The rank
count does not matter to the model: at fp32 the distributed run equals the single-process one
(tests/runtime/test_exactness.py).
"""

import dataclasses
import statistics

from adaqp.cli import presets
from adaqp.cli.main import build_parser
from adaqp.cli.train_cmd import config_from_args
from adaqp.runtime.launch import spawn
from adaqp.runtime.run import summarize
from adaqp.runtime.prepare import prepare_plan

SEEDS = range(2)


def kipf_config():
    """What ``adaqp train cora --config kipf --nprocs 2`` trains."""
    argv = ["train", "cora", "--config", "kipf", "--nprocs", "2"]
    parser = build_parser()
    return config_from_args(presets.reparse(parser, parser.parse_args(argv), argv))


def test_kipf_preset_is_the_published_configuration():
    c = kipf_config()
    m = c.model
    assert (m.model, m.layers, m.hidden, m.dropout, m.layer_norm) == ("gcn", 2, 16, 0.5, False)
    assert (c.epochs, c.lr, c.weight_decay, c.feature_norm) == (200, 0.01, 5e-4, "row")


def test_cora_accuracy_vanilla_and_2bit_adaqp(tmp_path):
    base = dataclasses.replace(kipf_config(), eval_every=200, progress=False)
    cfgs = [dataclasses.replace(base, schedule=s, bits=b, seed=seed)
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
