"""--out and OS errors: one line naming the path, exit 2; summary.json only beside a complete result."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from adaqp.io import write_summary
from helpers.badinput import assert_refused_or_ok, run_cli

GRAPH = "sbm:nodes=60,classes=3,feat=8,deg=4,seed=0"


@pytest.fixture
def a_file(tmp_path) -> Path:
    f = tmp_path / "plain-file"
    f.write_text("not a folder")
    return f


@pytest.mark.parametrize("argv", [
    ["data", GRAPH, "--out", "{f}/sub"],
    ["data", GRAPH, "--save", "{f}/sub/g.npz"],
    ["partition", GRAPH, "--parts", "2", "--out", "{f}/sub/deeper"],
    ["estimate", GRAPH, "--parts", "2", "--cluster", "local-cpu", "--out", "{f}/x"],
    ["partition", GRAPH, "--parts", "2", "--out", "/proc/adaqp-no-such-dir/out"],
])
def test_an_unwritable_out_is_one_line_naming_the_path(argv, a_file):
    argv = [a.format(f=a_file) for a in argv]
    code, err = assert_refused_or_ok(argv)
    assert code == 2
    error = [ln for ln in err.splitlines() if ": error: " in ln][0]
    assert any(part in error for part in (str(a_file), "/proc/adaqp-no-such-dir")), error


def test_out_that_is_a_file_is_refused(a_file):
    code, err = assert_refused_or_ok(["data", GRAPH, "--out", a_file])
    assert code == 2 and "not a folder" in err


def test_a_full_disk_mid_run_leaves_no_summary(tmp_path, monkeypatch):
    """The first run completes; the second fails on its second file with ENOSPC: the folder must not
    keep the first run's summary.json beside the second run's files."""
    out = tmp_path / "out"
    assert run_cli(["partition", GRAPH, "--parts", "2", "--out", out])[0] == 0
    assert (out / "summary.json").is_file()
    from adaqp.cli import report

    real, calls = report.write_csv, []

    def full_disk(path, *a, **k):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(report, "write_csv", full_disk)
    code, err = assert_refused_or_ok(["partition", GRAPH, "--parts", "3", "--out", out])
    assert code == 2 and "No space left on device" in err and "pair_rows.csv" in err
    assert not (out / "summary.json").exists()


def test_summary_is_written_last(tmp_path, monkeypatch):
    from adaqp import io

    order = []
    real_replace = os.replace
    monkeypatch.setattr(io.os, "replace", lambda a, b: (order.append(Path(b).name), real_replace(a, b))[1])
    assert run_cli(["data", GRAPH, "--out", tmp_path])[0] == 0
    assert order[-1] == "summary.json" and "degrees.csv" in order


def test_a_failed_summary_write_keeps_the_old_one_and_no_temporary(tmp_path):
    write_summary(tmp_path, {"ok": 1})
    with pytest.raises(TypeError):
        write_summary(tmp_path, {"ok": object()})  # not JSON: fails before anything is renamed
    assert (tmp_path / "summary.json").read_text().strip().endswith("}")
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
