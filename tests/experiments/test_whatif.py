"""``adaqp whatif``: the sweep's rows, speedups, the cheapest configuration, layouts, memory, the
--like path, bad input (one line, exit 2) and the files the CLI writes."""

import csv
import json
import math
import subprocess
import sys

import pytest

from adaqp.cli.main import main
from adaqp.costmodel.bundled import load_cluster
from adaqp.costmodel.profile import load_profile
from adaqp.errors import AdaqpInputError
from adaqp.experiments import whatif as wi

SMALL_SBM = "sbm:nodes=2000,classes=4,feat=16,deg=8,seed=1"
BASE = "h100-8x-nvlink-ib200"


@pytest.fixture(scope="module")
def reddit_rows():
    base = load_cluster(BASE)
    wl = wi.like_workload("Reddit")  # names are case-insensitive
    grid = wi.Grid([4, 8, 16, 32], wi.parse_bandwidths("100gbit,25gbit"), [False, True],
                   wi.parse_schedules("adaqp,quant,overlap"), 2)
    rows = wi.sweep(wl, wi.model_shape(wl, "gcn", 3, 256), base, load_profile(base.profile), grid)
    return grid, rows


def test_sweep_rows_and_speedups(reddit_rows):
    grid, rows = reddit_rows
    assert grid.schedules == ["vanilla", "adaqp", "quant", "overlap"]  # vanilla added first
    assert [b for b, _ in grid.bandwidths] == ["25gbit", "100gbit"]  # sorted by bandwidth
    assert len(rows) == grid.points == 4 * 2 * 2 * 4
    points = {}
    for r in rows:
        points.setdefault((r["devices"], r["bandwidth_Bps"], r["gdr"]), {})[r["schedule"]] = r
        assert 0 <= r["comm_share"] <= 1 and 0 <= r["exposed_share"] <= r["comm_share"] + 1e-9
        assert r["bits"] == (2 if r["schedule"] in ("quant", "adaqp") else 32)
        assert r["edge_cut_frac"] == pytest.approx(0.3, abs=1e-3)
    assert len(points) == 4 * 2 * 2
    for rs in points.values():
        assert rs["vanilla"]["speedup"] == 1.0
        for r in rs.values():
            assert r["speedup"] == pytest.approx(rs["vanilla"]["epoch_time_s"] / r["epoch_time_s"], rel=1e-12)
    # up to 8 devices fill one node: the network is unused and bandwidth/GDR change nothing
    for d in (4, 8):
        one = [r["epoch_time_s"] for r in rows if r["devices"] == d and r["schedule"] == "adaqp"]
        assert len(set(one)) == 1 and not any(r["network_used"] for r in rows if r["devices"] == d)
    # across nodes, more bandwidth never hurts and quantization saves communication
    for d in (16, 32):
        slow, fast = (points[(d, bw, "on")] for _, bw in grid.bandwidths)
        assert fast["vanilla"]["epoch_time_s"] < slow["vanilla"]["epoch_time_s"]
        assert slow["adaqp"]["comm_time_s"] < slow["vanilla"]["comm_time_s"]
        assert slow["adaqp"]["speedup"] > 1


def test_cheapest_is_the_cheapest_meeting_the_target(reddit_rows):
    _, rows = reddit_rows
    times = sorted(r["epoch_time_s"] for r in rows)
    for target in (times[len(times) // 2], times[len(times) // 4], times[-1] * 2):
        best, reason = wi.cheapest(rows, target)
        assert best is not None and best["epoch_time_s"] <= target and best["meets_target"] is None

        def key(r):
            return (r["devices"], r["bandwidth_Bps"], r["gdr"] == "on")

        meeting = [r for r in rows if r["epoch_time_s"] <= target and r["fits_memory"]]
        assert key(best) == min(key(r) for r in meeting)
        same_hw = [r for r in meeting if key(r) == key(best)]
        assert best["epoch_time_s"] == min(r["epoch_time_s"] for r in same_hw)
        assert "meeting" in reason
        for s in ("vanilla", "adaqp"):
            b, _ = wi.cheapest(rows, target, s)
            ok = [r for r in meeting if r["schedule"] == s]
            assert (b is None) == (not ok)
            if b is not None:
                assert b["schedule"] == s and key(b) == min(key(r) for r in ok)
    best, reason = wi.cheapest(rows, times[0] / 2)
    assert best is None and "no point" in reason and "fastest" in reason
    assert wi.cheapest(rows, None) == (None, "no --target-epoch-time given")


def test_layout_fills_nodes_and_keeps_shared_devices():
    base = load_cluster(BASE)
    assert (wi.layout(base, 4).nodes, wi.layout(base, 4).devices_per_node) == (1, 4)
    assert (wi.layout(base, 32).nodes, wi.layout(base, 32).devices_per_node) == (4, 8)
    assert (wi.layout(base, 8, per_node=4).nodes, wi.layout(base, 8, per_node=4).devices_per_node) == (2, 4)
    with pytest.raises(AdaqpInputError, match="do not fill nodes of 8"):
        wi.layout(base, 12)
    c = wi.with_network(wi.layout(base, 16), 25e9 / 8, False)
    assert c.network.bw_Bps == 25e9 / 8 and not c.network.gdr
    assert c.network.latency_s == base.network.latency_s and c.intra_link == base.intra_link
    shared = load_cluster("h200-shared-2")
    assert wi.layout(shared, 4).ranks_per_device == 4
    with pytest.raises(AdaqpInputError, match="GPUDirect RDMA needs transport nccl"):
        wi.parse_gdr("both", shared)
    assert wi.parse_gdr(None, shared) == [False] and wi.parse_gdr(None, base) == [False, True]


def test_shared_device_base_sweeps_ranks():
    from adaqp.data.spec import load_dataset

    base = load_cluster("h200-shared-2")
    wl = wi.built_workload(load_dataset(SMALL_SBM))
    grid = wi.Grid([2, 4], wi.parse_bandwidths("10gbit"), wi.parse_gdr(None, base), ["vanilla"], 2)
    rows = wi.sweep(wl, wi.model_shape(wl, "gcn", 2, 16), base, load_profile(base.profile), grid)
    assert [(r["devices"], r["ranks"], r["physical_devices"]) for r in rows] == [(2, 2, 1), (4, 4, 1)]
    assert rows[1]["mem_GB"] > 0 and all(r["fits_memory"] for r in rows)


def test_memory_estimate_and_device_capacity():
    assert wi.device_memory_bytes(load_profile("h100")) == 80e9
    assert wi.device_memory_bytes(load_profile("v100")) == 32e9  # "16/32 GB": the larger
    assert wi.device_memory_bytes(load_profile("cpu-2core")) is None
    wl = wi.like_workload("ogbn-papers100M")
    shape = wi.model_shape(wl)
    two, many = (wi.memory_bytes(wl.stats(p), shape).max() for p in (2, 1024))
    # 111 M nodes do not fit on 2 GPUs, do on 1024: at 256 each rank's 3.7 M halo rows keep
    # send and receive buffers for every exchange, in the training and the evaluation exchanger
    assert two > 500e9 and many < 40e9


def test_built_workload_partitions_for_real():
    from adaqp.data.spec import load_dataset

    g = load_dataset(SMALL_SBM)
    wl = wi.built_workload(g, "metis")
    st = wl.stats(4)
    assert st.num_parts == 4 and int(st.inner.sum()) == g.num_nodes
    assert 0 < st.nnz_marginal_halo.sum() < g.num_edges
    assert wl.stats(4) is st  # cached per part count
    with pytest.raises(AdaqpInputError):
        wl.stats(g.num_nodes + 1)


def test_parsers_refuse_bad_input():
    for f, text in ((wi.parse_bandwidths, "25gibberish"), (wi.parse_bandwidths, "25gbit,,"),
                    (wi.parse_devices, "0,2"), (wi.parse_devices, "two"), (wi.parse_bits, "adaptive"),
                    (wi.parse_bits, "3"), (wi.parse_schedules, "vanilla,fast"), (wi.parse_target, "-1s"),
                    (wi.parse_target, "soon"), (wi.like_workload, "facebook")):
        with pytest.raises(AdaqpInputError):
            f(text)
    assert wi.parse_target("500ms") == pytest.approx(0.5)
    assert wi.parse_devices("8,2,8") == [2, 8]


def test_cli_like_writes_table_csv_summary_and_plots(tmp_path, capsys):
    out = tmp_path / "w"
    assert main(["whatif", "--like", "ogbn-products", "--devices", "8,16,32", "--bandwidth", "25gbit,200gbit",
                 "--schedules", "adaqp", "--model", "sage", "--target-epoch-time", "0.5s", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ASSUMED edge cut" in text and "cheapest meeting the target" in text and "adaqp x" in text
    s = json.loads((out / "summary.json").read_text())
    assert s["source"] == "like" and s["nodes"] == 2_449_029 and s["grid"]["gdr"] == ["off", "on"]
    assert s["grid"]["schedules"] == ["vanilla", "adaqp"] and len(s["rows"]) == 3 * 2 * 2 * 2
    assert s["target_epoch_time_s"] == 0.5 and s["model"] == "sage"
    best = s["best"]
    assert best is not None and best["epoch_time_s"] <= 0.5
    cheaper = [r for r in s["rows"] if r["meets_target"]
               and (r["devices"], r["bandwidth_Bps"]) < (best["devices"], best["bandwidth_Bps"])]
    assert not cheaper
    assert set(s["best_by_schedule"]) == {"vanilla", "adaqp"}
    with open(out / "whatif.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 24 and {r["schedule"] for r in rows} == {"vanilla", "adaqp"}
    assert all(math.isfinite(float(r["speedup"])) for r in rows)
    for f in ("whatif_heatmap.png", "whatif_lines.png"):
        assert (out / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / f).stat().st_size > 5000


def test_cli_built_dataset_without_target(tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["whatif", SMALL_SBM, "--devices", "2,4", "--bandwidth", "10gbit", "--gdr", "off",
                 "--base", "a100-8x-nvlink-2node-100gbe", "--per-node", "2", "--out", str(out)]) == 0
    assert "cheapest meeting the target: none — no --target-epoch-time given" in capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    assert s["source"] == "built" and s["best"] is None and s["best_reason"] == "no --target-epoch-time given"
    four = [r for r in s["rows"] if r["devices"] == 4]
    assert all(r["nodes"] == 2 and r["network_used"] and 0 < r["edge_cut_frac"] < 1 for r in four)


@pytest.mark.parametrize("argv, message", [
    (["--like", "facebook"], "unknown --like graph 'facebook'"),
    (["--like", "reddit", "--bandwidth", "25gibberish"], "--bandwidth: cannot parse '25gibberish'"),
    (["--like", "reddit", "--devices", "12"], "12 devices do not fill nodes of 8"),
    (["--like", "reddit", "--bits", "adaptive"], "--bits: whatif sends every quantized message at one fixed width"),
    (["--like", "reddit", "--target-epoch-time", "fast"], "--target-epoch-time: cannot parse"),
    (["--like", "reddit", "--base", "h200-shared-2", "--gdr", "on"], "GPUDirect RDMA needs transport nccl"),
    ([SMALL_SBM, "--like", "reddit"], "give a DATASET or --like NAME"),
    ([], "give a DATASET or --like NAME"),
    ([SMALL_SBM, "--edge-cut", "0.2"], "--edge-cut is for --like graphs only"),
])
def test_cli_bad_input_is_one_line_exit_2(argv, message, tmp_path, capsys):
    assert main(["whatif", *argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("adaqp whatif: error: ") and message in err[0], err
    assert not (tmp_path / "x").exists()  # refused before any work


def test_cli_exit_code_from_a_real_process():
    p = subprocess.run([sys.executable, "-m", "adaqp", "whatif", "--like", "nosuch"], capture_output=True, text=True,
                       check=False)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "unknown --like graph" in p.stderr
