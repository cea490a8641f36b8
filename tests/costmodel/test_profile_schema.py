"""HardwareProfile: the schema is checked on load, and mismatched or malformed profiles refused."""

import copy
import json

import pytest

from adaqp.costmodel.profile import HardwareProfile, check_fits, load_profile
from adaqp.errors import AdaqpInputError


@pytest.fixture(scope="module")
def doc():
    return load_profile("cpu-2core").to_dict()


def test_round_trip_keeps_every_figure(doc, tmp_path):
    p = HardwareProfile.from_dict(doc)
    path = p.save(tmp_path / "p.json")
    q = load_profile(path)
    assert q.to_dict() == json.loads(json.dumps(doc))
    assert q.op("spmm_fwd", rows=1000, nnz=10_000, width=64) > 0
    assert q.kind == "measured" and "method" in q.meta and q.meta["cores"] >= 1


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(schema="something-else"), "not an adaqp profile"),
    (lambda d: d.update(version=99), "version 99 is not supported"),
    (lambda d: d["ops"].pop("spmm_fwd"), "lacks op(s): spmm_fwd"),
    (lambda d: d["links"].pop("net"), "lacks link(s): net"),
    (lambda d: d["ops"]["gemm_fwd"].update(kind="linear", features=["1", "flops", "gemm_io"], coef=[-1.0, 0.0, 0.0]),
     "finite and >= 0"),
    (lambda d: d["ops"]["relu"].update(kind="linear", features=["1", "furlongs"], coef=[0, 0]), "unknown feature"),
    (lambda d: d["links"]["net"].update(bw_Bps=0), "bw_Bps must be > 0"),
    (lambda d: d.update(interference=0.5), "interference must be a number >= 1"),
    (lambda d: d.update(kind="guessed"), "profile kind must be one of"),
    (lambda d: d.pop("ops"), "missing field 'ops'"),
    (lambda d: d.update(cpu_memory={"allocator_slack": 0.9}), "cpu_memory holds allocator_slack (>= 1)"),
    (lambda d: d.update(cpu_memory={"slack": 1.2}), "cpu_memory holds"),
])
def test_malformed_profiles_are_refused_with_the_reason(doc, mutate, message):
    d = copy.deepcopy(doc)
    mutate(d)
    with pytest.raises(AdaqpInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        HardwareProfile.from_dict(d, source="p.json")


def test_measured_cpu_memory_round_trips(doc, tmp_path):
    d = copy.deepcopy(doc)
    d["cpu_memory"] = {"allocator_slack": 1.7, "rank_overhead_bytes": 180.0 * 2**20}
    q = load_profile(HardwareProfile.from_dict(d).save(tmp_path / "m.json"))
    assert q.cpu_memory == d["cpu_memory"] and q.to_dict()["cpu_memory"] == d["cpu_memory"]
    assert "cpu_memory" not in doc  # the bundled profile leaves it to costmodel.memory's constants


def test_unknown_name_and_corrupt_file(tmp_path):
    with pytest.raises(AdaqpInputError, match="unknown profile 'nope'; bundled:"):
        load_profile("nope")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(AdaqpInputError, match="corrupt JSON"):
        load_profile(tmp_path / "bad.json")


def test_profile_of_another_device_kind_is_refused():
    from adaqp.costmodel.bundled import load_cluster

    with pytest.raises(AdaqpInputError, match="describes a cuda device but cluster"):
        check_fits(load_profile("h200"), load_cluster("local-cpu"))
    with pytest.raises(AdaqpInputError, match="describes a cpu device"):
        check_fits(load_profile("cpu-2core"), load_cluster("h200-shared-2"))
    check_fits(load_profile("h200"), load_cluster("h200-shared-2"))
