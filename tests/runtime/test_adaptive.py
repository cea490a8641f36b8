"""When ``--bits adaptive`` re-solves its BitPlan (runtime.adaptive), without running a rank."""

from types import SimpleNamespace

import pytest

from adaqp.errors import AdaqpInputError
from adaqp.runtime.adaptive import AdaptiveBits
from adaqp.runtime.config import TrainConfig


def _solves(epochs: int, every: int, max_replans: int | None) -> list[int]:
    cfg = TrainConfig(dataset="cora", schedule="adaqp", bits="adaptive", epochs=epochs, replan_every=every,
                      max_replans=max_replans)
    exchanger = SimpleNamespace(trace_ranges=None)
    bits = AdaptiveBits(SimpleNamespace(cfg=cfg, ctx=SimpleNamespace(exchanger=exchanger)), plan_dir=None)
    out = []
    for e in range(epochs):
        bits.before_epoch(e)
        assert exchanger.trace_ranges == bits.solves_after(e)  # traced exactly before a solve
        if bits.solves_after(e):
            out.append(e)
    return out


@pytest.mark.parametrize("max_replans, expected", [(None, [2, 5, 8, 11, 14]), (1, [2]), (2, [2, 5]), (9, [2, 5, 8, 11, 14])])
def test_re_solves_every_k_epochs_up_to_the_cap_never_after_the_last(max_replans, expected):
    assert _solves(16, 3, max_replans) == expected


def test_validate_runs_one_plan_over_its_measured_epochs():
    from adaqp.experiments.validate import Grid, train_configs

    grid = Grid(datasets=("cora",), ranks=(2,), links=(None,), schedules=("adaqp",), bits=("adaptive",))
    cfg = next(c for c in train_configs(grid, "cora", 2, None) if c.bits == "adaptive")
    assert cfg.max_replans == 1 and cfg.replan_every == grid.warmup
    assert _solves(cfg.epochs, cfg.replan_every, cfg.max_replans) == [grid.warmup - 1]  # then measured


def test_a_cap_below_one_is_refused():
    with pytest.raises(AdaqpInputError, match="max_replans"):
        TrainConfig(dataset="cora", schedule="adaqp", bits="adaptive", max_replans=0)
