"""torchrun across two emulated hosts trains exactly what one host trains; bad flags are one line."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from adaqp.experiments import multinode
from adaqp.runtime import emulate

_can_emulate = os.geteuid() == 0 and shutil.which("ip") and shutil.which("tc")
needs_netns = pytest.mark.skipif(not _can_emulate, reason="emulated hosts need root and iproute2 (ip, tc)")


def _ours() -> set[str]:
    try:
        return {n for n in os.listdir(emulate.NETNS_DIR) if n.startswith(emulate.PREFIX)}
    except FileNotFoundError:
        return set()


@pytest.mark.parametrize("argv, words", [
    (["--nodes", "0"], "--nodes"),
    (["--nodes", "1"], "--nodes >= 2"),
    (["--ranks-per-node", "x"], "--ranks-per-node"),
    (["--link", "fast"], "--link"),
    (["--timeout", "-1"], "--timeout"),
    (["--plan-dir-mode", "some"], "--plan-dir-mode"),
])
def test_bad_flags_are_one_line_and_exit_2(argv, words, tmp_path, capsys):
    try:
        code = multinode.main([*argv, "--out", str(tmp_path / "o")])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0], err
    assert not (tmp_path / "o" / "summary.json").exists()


def test_without_root_one_line_names_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert multinode.main(["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs root" in err[0]


def test_the_torchrun_command_is_the_documented_one():
    args = multinode.build_parser().parse_args(["--out", "x", "--ranks-per-node", "3"])
    cmd = multinode.torchrun_cmd(args, 1, "10.0.0.1:29500", "job", "10.0.0.2", ["--out", "o"])
    text = " ".join(cmd[1:])
    assert text.startswith("-m torch.distributed.run --nnodes 2 --node-rank 1 --nproc-per-node 3 "
                           "--rdzv-backend c10d --rdzv-endpoint 10.0.0.1:29500")
    assert "--rdzv-conf is_host=0 --local-addr 10.0.0.2 -m adaqp train cora" in text
    assert "--launcher torchrun" in text and "--bits 32 " in text and "--schedule vanilla" in text


@needs_netns
def test_two_hosts_train_what_one_host_trains(tmp_path):
    before = _ours()
    out = tmp_path / "mn"
    res = subprocess.run([sys.executable, "-m", "adaqp.experiments.multinode", "--nodes", "2",
                          "--ranks-per-node", "1", "--epochs", "3", "--hidden", "16", "--plan-dir-mode", "each",
                          "--link", "1gbit", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    s = json.loads((out / "summary.json").read_text())
    assert (s["nodes"], s["world_size"]) == (2, 2)
    assert s["losses_equal"] is True and s["max_loss_diff"] <= multinode.LOSS_TOL
    assert s["epoch_time_s_median"] > 0 and 0 <= s["test_acc"] <= 1
    run = s["modes"]["each"]
    assert all(b > 100_000 for b in run["host_tx_bytes"]), "the ranks did not talk over the emulated links"
    assert "--rdzv-backend c10d" in run["torchrun_command_host0"]
    assert (out / "losses.csv").read_text().count("\n") == 1 + 3 * 2  # header + epochs x ranks
    assert _ours() <= before, "namespaces left behind"
