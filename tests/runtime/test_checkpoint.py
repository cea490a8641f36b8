"""Checkpoints: full training state round-trips, RNGs resume, bad files are refused, saves are atomic."""

import pickle
import random
from collections import OrderedDict

import numpy as np
import pytest
import torch

from adaqp.errors import AdaqpInputError
from adaqp.runtime import checkpoint as ck


class Payload:
    """Stands in for an arbitrary object someone pickled into a file."""


def _trained(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 3))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 4)).square().sum().backward()
        opt.step()
    return model, opt


def _draws():
    return torch.rand(4).tolist(), np.random.rand(4).tolist(), [random.random() for _ in range(4)]


def test_model_optimizer_and_rng_round_trip(tmp_path):
    model, opt = _trained()
    widths = np.array([2, 4, 8], dtype=np.int8)  # e.g. a BitPlan's arrays
    path = ck.save_checkpoint(ck.checkpoint_path(tmp_path, 1), {
        "model": model.state_dict(), "optimizer": opt.state_dict(), "rng": ck.rng_state(),
        "epoch": 7, "bits": widths, "lr": np.float32(0.5)})
    assert path == tmp_path / "rank1.pt"
    state = ck.load_checkpoint(path)
    assert state["epoch"] == 7 and state["lr"] == 0.5
    assert np.array_equal(state["bits"].numpy(), widths)

    model2, opt2 = _trained(seed=1)
    model2.load_state_dict(state["model"])
    opt2.load_state_dict(state["optimizer"])
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    assert isinstance(state["model"], OrderedDict)


def test_restored_rng_reproduces_the_same_draws(tmp_path):
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    random.gauss(0, 1)  # leaves a cached gauss value in Python's state
    ck.save_checkpoint(tmp_path / "r.pt", {"rng": ck.rng_state()})
    expected = _draws()
    _draws()  # move every generator on
    ck.set_rng_state(ck.load_checkpoint(tmp_path / "r.pt")["rng"])
    assert _draws() == expected


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated"])
def test_corrupt_file_is_an_input_error_naming_it(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(AdaqpInputError, match="bad.pt"):
        ck.load_checkpoint(path)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(AdaqpInputError, match="not found.*nope.pt"):
        ck.load_checkpoint(tmp_path / "nope.pt")


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": Payload()}, path)  # torch.save pickles anything ...
    with pytest.raises(AdaqpInputError, match="evil.pt.*refused.*Payload"):
        ck.load_checkpoint(path)  # ... weights_only loading does not rebuild it
    path.write_bytes(pickle.dumps({"x": Payload()}))
    with pytest.raises(AdaqpInputError):
        ck.load_checkpoint(path)


def test_unsupported_values_are_refused_at_save_time(tmp_path):
    with pytest.raises(TypeError, match=r"state\['opt'\]\['x'\].*Payload"):
        ck.save_checkpoint(tmp_path / "c.pt", {"opt": {"x": Payload()}})
    with pytest.raises(TypeError, match="object array"):
        ck.save_checkpoint(tmp_path / "c.pt", {"a": np.array([1, "x"], dtype=object)})
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_previous_checkpoint_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "rank0.pt"
    ck.save_checkpoint(path, {"epoch": 1})
    ck.save_checkpoint(path, {"epoch": 2})  # replacing works and leaves nothing else behind
    assert [p.name for p in tmp_path.iterdir()] == ["rank0.pt"]

    def crash_mid_write(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(ck.torch, "save", crash_mid_write)
    with pytest.raises(OSError, match="disk full"):
        ck.save_checkpoint(path, {"epoch": 3})
    monkeypatch.undo()
    assert ck.load_checkpoint(path) == {"epoch": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["rank0.pt"]


def test_numpy_generators_round_trip_through_a_checkpoint(tmp_path):
    for bit_generator in (np.random.MT19937(1), np.random.Philox(2), np.random.PCG64(3)):
        gen = np.random.Generator(bit_generator)
        ck.save_checkpoint(tmp_path / "g.pt", {"g": ck.generator_state_plain(gen.bit_generator.state)})
        expected = gen.random(5)
        gen.bit_generator.state = ck.generator_state_numpy(ck.load_checkpoint(tmp_path / "g.pt")["g"])
        assert np.array_equal(gen.random(5), expected)
