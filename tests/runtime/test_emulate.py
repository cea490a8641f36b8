"""The emulated multi-host cluster: namespaces appear and always go, links are shaped both ways."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from adaqp.cluster import ClusterSpec
from adaqp.errors import AdaqpInputError
from adaqp.runtime import emulate
from adaqp.runtime.emulate import EmulatedNetwork, check_available, measure_link, sweep_stale

WORKERS = Path(__file__).with_name("launch_workers.py")
_can_emulate = os.geteuid() == 0 and shutil.which("ip") and shutil.which("tc")
needs_netns = pytest.mark.skipif(not _can_emulate, reason="network emulation needs root and iproute2 (ip, tc)")


def _netns() -> set[str]:
    try:
        return set(os.listdir(emulate.NETNS_DIR))
    except FileNotFoundError:
        return set()


def test_check_available_names_missing_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(AdaqpInputError, match="needs root"):
        check_available()


def test_check_available_names_missing_tools(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool == "tc" else "/usr/sbin/ip")
    with pytest.raises(AdaqpInputError, match="iproute2: tc not found"):
        check_available()


def test_tbf_parameters_scale_with_rate():
    for rate in (10e6, 100e6, 1e9, 10e9):
        burst, limit = emulate.tbf_params(rate)
        assert burst >= max(rate / 8 / 250, 10 * 1514)  # one 4 ms tick and several frames
        assert limit >= burst + rate / 8 * 0.05


def _same(a: ClusterSpec, b: ClusterSpec) -> None:
    da, db = a.to_dict(), b.to_dict()
    for link in ("intra_link", "network"):  # 50 * 1e-6 from YAML units is not exactly 50e-6
        assert da.pop(link) == pytest.approx(db.pop(link))
    assert da == db


def test_emulated_cluster_spec():
    c = ClusterSpec.emulated(4, 12.5e6)
    assert (c.nodes, c.devices_per_node, c.ranks_per_device, c.device) == (4, 1, 1, "cpu")
    assert (c.profile, c.transport, c.network.gdr) == ("cpu-2core", "gloo-cpu", False)
    assert (c.network.bw_Bps, c.network.latency_s, c.intra_link.kind) == (12.5e6, 50e-6, "loopback")
    bundled = Path(__file__).parents[2] / "costmodel" / "clusters"
    _same(c, ClusterSpec.from_yaml(bundled / "local-cpu-100mbit.yaml"))  # one convention, two spellings
    _same(ClusterSpec.emulated(4, 125e6), ClusterSpec.from_yaml(bundled / "local-cpu-1gbit.yaml"))
    assert ClusterSpec.emulated(2, 1e6, latency_s=1e-3).network.latency_s == 1e-3
    assert ClusterSpec.local_cpu(2, "200mbit") == ClusterSpec.emulated(2, 25e6)


@needs_netns
def test_namespaces_exist_inside_and_go_on_exit_and_on_exception():
    before = signal.getsignal(signal.SIGTERM)
    with EmulatedNetwork(3, 100e6) as net:
        assert set(net.namespaces) | {net.switch} <= _netns()
        assert net.ifname == "eth0" and len(set(net.addresses)) == 3
        q = net.qdiscs()
        for i, ns in enumerate(net.namespaces):  # upload shaped in the host, download at the switch
            assert "tbf" in q[ns] and "dev eth0" in q[ns] and "rate 100Mbit" in q[ns]
            assert f"dev h{i}" in q[net.switch]
        assert q[net.switch].count("tbf") == 3
    assert not (set(net.namespaces) | {net.switch}) & _netns()
    with pytest.raises(ZeroDivisionError):
        with EmulatedNetwork(2, 100e6) as net2:
            raise ZeroDivisionError
    assert not (set(net2.namespaces) | {net2.switch}) & _netns()
    assert signal.getsignal(signal.SIGTERM) == before  # handlers restored


_HOLDER = textwrap.dedent("""
    import signal, time
    from adaqp.runtime.emulate import EmulatedNetwork
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    with EmulatedNetwork(2, 50e6) as net:
        print(" ".join([net.switch, *net.namespaces]), flush=True)
        time.sleep(60)
""")


def _holder():
    p = subprocess.Popen([sys.executable, "-c", _HOLDER], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    names = set(p.stdout.readline().split())
    assert len(names) == 3 and names <= _netns(), p.stderr.read() if p.poll() is not None else names
    return p, names


@needs_netns
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, -signal.SIGINT)])
def test_a_signalled_holder_cleans_up(sig, code):
    p, names = _holder()
    p.send_signal(sig)
    assert p.wait(timeout=20) == code  # SIGTERM: exit 143; SIGINT: KeyboardInterrupt, as Python does
    assert not names & _netns()
    if sig == signal.SIGINT:
        assert "KeyboardInterrupt" in p.stderr.read()


@needs_netns
def test_an_ignored_signal_stays_ignored():
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a shell's background job: Ctrl-C is not for it
    try:
        with EmulatedNetwork(1, 10e6):
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)


@needs_netns
def test_sweep_stale_removes_what_a_killed_holder_left():
    p, names = _holder()
    p.kill()
    p.wait(timeout=10)
    assert names <= _netns()  # SIGKILL: nothing could clean up
    assert set(sweep_stale()) >= names
    assert not names & _netns()


@needs_netns
def test_two_ranks_all_reduce_across_namespaces():
    from adaqp.runtime.launch import spawn

    with EmulatedNetwork(2, 100e6) as net:
        out = spawn(f"{WORKERS}:allreduce_sum", 2, args=(1.0,), master_addr=net.addresses[0],
                    netns=net.namespaces)
    assert [o["sum"] for o in out] == [3.0, 3.0]
    assert all(o["master"] == net.addresses[0] for o in out)


@needs_netns
def test_shaped_link_carries_about_its_rate():
    with EmulatedNetwork(2, 50e6) as net:
        achieved = measure_link(net, 0, 1, nbytes=4_000_000)
    assert 0.5 * 50e6 / 8 <= achieved <= 1.15 * 50e6 / 8, achieved


@needs_netns
def test_train_cli_with_link(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "adaqp", "train", "cora", "--nprocs", "2", "--epochs", "3", "--link", "100mbit",
           "--hidden", "16", "--layers", "2", "--out", str(out)]
    before = _netns()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "summary.json").read_text())
    assert (s["link"], s["link_bps"]) == ("100mbit", 100e6)
    left = [n for n in _netns() - before if not emulate._pid_alive(int(n.split("-")[1]))]
    assert not left  # a live creator's namespaces may belong to a concurrent run


def test_train_cli_link_fallback_and_refusal(tmp_path, monkeypatch, capsys):
    from adaqp.cli.main import main

    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # as if not root: emulation unavailable
    argv = ["train", "cora", "--nprocs", "2", "--epochs", "1", "--link", "100mbit", "--hidden", "8",
            "--layers", "2"]
    assert main(argv) == 2
    assert "needs root" in capsys.readouterr().err
    assert main([*argv, "--link-fallback", "--out", str(tmp_path)]) == 0
    assert "warning" in capsys.readouterr().err
    assert json.loads((tmp_path / "summary.json").read_text())["link"] is None
