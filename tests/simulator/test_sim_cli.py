"""``adaqp simulate``: its files, and a trace.json built like the runtime's."""

import argparse
import csv
import json

import pytest

from adaqp.cli import simulate_cmd
from adaqp.cluster import ClusterSpec, Link, Network
from adaqp.costmodel.bundled import list_clusters
from adaqp.io import read_json

SMALL_SBM = "sbm:nodes=2000,classes=4,feat=16,deg=8,seed=1"


def _run(argv):
    p = argparse.ArgumentParser()
    simulate_cmd.add_parser(p.add_subparsers(dest="command"))
    args = p.parse_args(["simulate", *argv])
    return args.run(args)


def test_simulate_writes_summary_utilisation_and_trace(tmp_path, capsys, kit):
    spec = ClusterSpec("two-nodes", 2, 2, "v100", Link("pcie", 16e9, 5e-6), Network("10gbit", 3e-5))
    spec.to_yaml(tmp_path / "cluster.yaml")
    kit.profile(net=(2e-5, 1e9), device="cuda", pcie=(1e-5, 2e10)).save(tmp_path / "prof.json")
    out = tmp_path / "out"
    assert _run([SMALL_SBM, "--parts", "4", "--method", "random", "--cluster", str(tmp_path / "cluster.yaml"),
                 "--profile", str(tmp_path / "prof.json"), "--schedule", "adaqp", "--bits", "4",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "critical path" in text and "utilisation" in text and "epoch" in text
    s = read_json(out / "summary.json")
    for key in ("epoch_time_s", "comm_time_s", "compute_time_s"):
        assert s[key] > 0 and s["analytic"][key] > 0
    assert abs(s["epoch_time_s"] / s["analytic"]["epoch_time_s"] - 1) < 0.5
    rows = list(csv.DictReader(open(out / "utilisation.csv")))
    assert {r["kind"] for r in rows} >= {"compute", "nic_out", "nic_in", "d2h", "h2d"}
    trace = read_json(out / "trace.json")["traceEvents"]
    spans = [e for e in trace if e["ph"] == "X"]
    assert {e["pid"] for e in spans} == {0, 1, 2, 3}
    threads = {(e["pid"], e["args"]["name"]) for e in trace if e["name"] == "thread_name"}
    assert {name for _, name in threads} == {"main", "comm"}
    assert {e["name"] for e in spans if e["cat"] == "comm"} == {"communicate"}
    assert {"quantize", "dequantize", "central", "marginal", "dense", "allreduce", "optimizer"} <= \
        {e["name"] for e in spans if e["cat"] == "main"}


def test_one_trace_writer_for_measured_and_simulated_timelines():
    from adaqp.runtime.trace import chrome_trace as runtime_trace
    from adaqp.simulator import chrome_trace

    from adaqp.trace_format import chrome_trace as core

    assert runtime_trace is core and chrome_trace is core


@pytest.mark.parametrize("cluster", list_clusters())
def test_simulate_runs_on_every_bundled_cluster(cluster, tmp_path, capsys):
    from adaqp.cli.main import main

    assert main(["simulate", "sbm:nodes=2000,classes=4,feat=16,deg=6,seed=0", "--cluster", cluster,
                 "--schedule", "adaqp", "--bits", "4", "--hidden", "32", "--out", str(tmp_path)]) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["epoch_time_s"] > 0 and s["comm_time_s"] >= 0 and s["compute_time_s"] > 0
