"""Resume: ranks agree on the newest epoch every rank has a valid checkpoint for; torn or missing
files fall back to the previous one; no checkpoint, or a rank without one, is one line and exit 2;
an adaptive run resumes bit-exact with the plan and re-solve schedule it had."""

import shutil

import pytest

from adaqp.errors import AdaqpInputError
from adaqp.runtime import resume as rs
from adaqp.runtime.config import TrainConfig
from adaqp.runtime.launch import RankFailure, spawn
from adaqp.runtime.model import ModelConfig
from adaqp.runtime.prepare import prepare_plan

SBM = "sbm:nodes=400,classes=4,feat=16,deg=6,seed=2"
RANK = "adaqp.runtime.trainer:train_rank"


def _cfg(**kw):
    base = dict(dataset=SBM, nprocs=2, model=ModelConfig("sage", 2, 16, 0.5, True), epochs=6, eval_every=2,
                warmup_epochs=0, progress=False, schedule="adaqp", bits="4", checkpoint_every=1)
    base.update(kw)
    return TrainConfig(**base)


def _losses(results):
    return [r["loss"] for r in results[0]["records"]]


@pytest.fixture(scope="module")
def run4(tmp_path_factory):
    """A 6-epoch reference and a run stopped after 4 epochs (checkpoints of epochs 2 and 3 kept)."""
    base = tmp_path_factory.mktemp("resume")
    plan = base / "plan"
    prepare_plan(_cfg(checkpoint_every=0), plan)
    ref = spawn(RANK, 2, (_cfg(checkpoint_dir=str(base / "ref")).to_dict(), str(plan)))
    spawn(RANK, 2, (_cfg(epochs=4, checkpoint_dir=str(base / "four")).to_dict(), str(plan)))
    return base, str(plan), _losses(ref)


def _resume_from(run4, tmp_path, damage):
    base, plan, ref = run4
    ckpt = tmp_path / "ckpt"
    shutil.copytree(base / "four", ckpt)
    damage(ckpt)
    res = spawn(RANK, 2, (_cfg(checkpoint_dir=str(ckpt), resume=True).to_dict(), plan))
    return [r["epoch"] for r in res[0]["records"]], _losses(res), ref


def test_each_rank_keeps_its_two_newest_checkpoints_with_sidecars(run4):
    ckpt = run4[0] / "four"
    assert sorted(p.name for p in ckpt.iterdir()) == [f"rank{r}-epoch{e}.{x}" for r in (0, 1) for e in (2, 3)
                                                      for x in ("json", "pt")]
    assert rs.valid_epochs(ckpt, 0) == [2, 3] and rs.resume_epoch(ckpt, 2) == 3


def test_ranks_agree_on_the_previous_epoch_when_one_rank_lacks_its_newest(run4, tmp_path):
    epochs, losses, ref = _resume_from(run4, tmp_path, lambda d: rs._delete(d, 1, 3))
    assert epochs == [3, 4, 5]  # from epoch 2, not 3: rank 1 has nothing newer
    assert losses == ref[3:]
    assert len(set(ref)) == 6  # the losses move: the comparison is not vacuous


def test_a_torn_newest_checkpoint_is_detected_and_the_previous_one_used(run4, tmp_path):
    def tear(d):
        path = rs.epoch_path(d, 0, 3)
        path.write_bytes(path.read_bytes()[:-100])  # truncated after its sidecar was written

    assert rs.valid_epochs(run4[0] / "four", 0) == [2, 3]
    epochs, losses, ref = _resume_from(run4, tmp_path, tear)
    assert epochs == [3, 4, 5] and losses == ref[3:]


def test_bad_bytes_of_the_same_length_are_detected(run4, tmp_path):
    shutil.copytree(run4[0] / "four", tmp_path / "c")
    path = rs.epoch_path(tmp_path / "c", 1, 3)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert rs.valid_epochs(tmp_path / "c", 1) == [2]
    rs.sidecar_path(rs.epoch_path(tmp_path / "c", 1, 2)).unlink()  # no sidecar: the write did not finish
    assert rs.valid_epochs(tmp_path / "c", 1) == []


def test_no_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    from adaqp.cli.main import main

    argv = ["train", SBM, "--nprocs", "2", "--epochs", "3", "--hidden", "8", "--resume", "--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no valid checkpoint to resume from" in err, err
    assert not (tmp_path / "plan").exists()  # refused before anything was partitioned or spawned


def test_a_rank_without_any_checkpoint_is_named(run4, tmp_path, capsys):
    from adaqp.cli.main import main

    out = tmp_path / "run"
    shutil.copytree(run4[0] / "four", out / "checkpoints")
    for e in (2, 3):
        rs._delete(out / "checkpoints", 1, e)
    argv = ["train", SBM, "--nprocs", "2", "--epochs", "6", "--hidden", "8", "--resume", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rank 1 of 2 has no valid checkpoint" in err, err
    # ranks started some other way (torchrun) check it themselves, all alike: an error, not a hang
    with pytest.raises(RankFailure, match="rank 1 of 2 has no valid checkpoint"):
        spawn(RANK, 2, (_cfg(checkpoint_dir=str(out / "checkpoints"), resume=True).to_dict(), run4[1]),
              timeout_s=30)


def test_agreement_rules():
    assert rs.agree([[2, 3], [2]], "d") == 2
    assert rs.agree([[1, 3], [3, 5], [3]], "d") == 3
    with pytest.raises(AdaqpInputError, match="ranks 0, 2 of 3 have no valid"):
        rs.agree([[], [1], []], "d")
    with pytest.raises(AdaqpInputError, match=r"no epoch .*rank 0: 4; rank 1: 2"):
        rs.agree([[4], [2]], "d")
    with pytest.raises(AdaqpInputError, match="already reach epoch 6 of 6"):
        rs.require_epochs_left(5, 6, "d")


def test_adaptive_run_killed_mid_training_resumes_bit_exact(tmp_path, monkeypatch):
    # re-solves after epochs 1, 3 and 5; checkpoints after 1, 3, 5, 7; rank 1 dies in epoch 5's
    # all-reduce, so the resume starts from epoch 3's plan and must re-solve again after epoch 5
    common = dict(bits="adaptive", replan_every=2, epochs=8, checkpoint_every=2)
    plan = tmp_path / "plan"
    prepare_plan(_cfg(**common, checkpoint_dir=str(tmp_path / "a")), plan)
    ref = spawn(RANK, 2, (_cfg(**common, checkpoint_dir=str(tmp_path / "a")).to_dict(), str(plan)))
    assert [r["epoch"] for r in ref[0]["records"] if "solve_s" in r] == [1, 3, 5]
    cfg = _cfg(**common, checkpoint_dir=str(tmp_path / "b"))
    monkeypatch.setenv("ADAQP_FAULT", "1:allreduce:5")
    with pytest.raises(RankFailure, match=r"rank 1 failed: killed by signal 9"):
        spawn(RANK, 2, (cfg.to_dict(), str(plan)), timeout_s=30)
    monkeypatch.delenv("ADAQP_FAULT")
    assert rs.valid_epochs(cfg.checkpoint_dir, 1) == [1, 3] and rs.resume_epoch(cfg.checkpoint_dir, 2) == 3
    rest = spawn(RANK, 2, ({**cfg.to_dict(), "resume": True}, str(plan)))
    assert [r["epoch"] for r in rest[0]["records"]] == [4, 5, 6, 7]
    assert [r["epoch"] for r in rest[0]["records"] if "solve_s" in r] == [5]
    assert _losses(rest) == _losses(ref)[4:]
    assert rest[0]["bitplan"] == ref[0]["bitplan"]  # the plan it ends with, as the uninterrupted run
    assert len(set(_losses(ref))) == 8
