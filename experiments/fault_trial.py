"""One fault trial: a training job killed at a chosen point, what it left behind, and its resume.

The job is ``python -m adaqp train`` under ``setsid`` (``start_new_session``), so every process
it starts (the launcher, its ranks, multiprocessing's helpers, ``ip``/``tc`` while it builds
emulated hosts) carries the launcher's PID as its SID; :func:`job_pids` finds them in
``/proc``. The rank to kill SIGKILLs itself where ``ADAQP_FAULT`` says (:mod:`adaqp.runtime.faults`)
and first writes the wall-clock time to the job's stderr: exit time is measured from that moment
to the moment no process of the job is left.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ORPHAN_GRACE_S = 2.0  # after the launcher exits, what is still alive after this long is an orphan
_MARK = re.compile(r"adaqp fault: SIGKILL rank (\d+) at (\w+) in epoch (\d+) t=([\d.]+)")


def job_pids(sid: int) -> list[int]:
    """PIDs of live processes whose SID is ``sid`` (zombies excluded: they hold nothing)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "(comm)", which may hold spaces
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(name))
    return pids


def our_netns(pid: int) -> list[str]:
    """Network namespaces named after the job's launcher (runtime/emulate.py: adaqp-<pid>-...)."""
    res = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return [ln.split()[0] for ln in res.stdout.splitlines() if ln.startswith(f"adaqp-{pid}-")]


def run_job(cmd: list[str], log: Path, env: dict, timeout_s: float) -> dict:
    """Run ``cmd`` to its end; return rc, exit time after the fault, orphans and namespaces left."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        rc = None  # hung: counted as such, then the whole job is killed below
    deadline = time.monotonic() + ORPHAN_GRACE_S
    while (left := job_pids(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.02)
    all_gone = time.time()
    orphans = job_pids(proc.pid)
    for pid in orphans:  # the job's own processes, by PID: a campaign must not leave them running
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if rc is None:
        proc.wait()
    netns = our_netns(proc.pid)
    for ns in netns:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    text = log.read_text(errors="replace")
    mark = _MARK.search(text)
    return {"rc": rc, "pid": proc.pid, "orphans": len(orphans), "netns_left": len(netns), "log": text,
            "killed_at": float(mark.group(4)) if mark else None, "all_gone": all_gone if not left else None}


def read_losses(run_dir: Path) -> dict[tuple[int, int], float]:
    with open(run_dir / "epochs.csv") as f:
        return {(int(r["epoch"]), int(r["rank"])): float(r["loss"]) for r in csv.DictReader(f)}


def checkpoints_load(ckpt_dir: Path, world: int) -> tuple[bool, int | None, str]:
    """(every rank's checkpoint at the agreed epoch loads with weights_only, that epoch, why not)."""
    from adaqp.errors import AdaqpInputError
    from adaqp.runtime.checkpoint import load_checkpoint
    from adaqp.runtime.resume import epoch_path, resume_epoch

    try:
        epoch = resume_epoch(ckpt_dir, world)
        for r in range(world):
            load_checkpoint(epoch_path(ckpt_dir, r, epoch))
    except AdaqpInputError as e:
        return False, None, str(e)
    return True, epoch, ""


def trial(train_argv: list[str], out: Path, fault: tuple[int, str, int], world: int,
          reference: dict, timeout_s: float) -> dict:
    """Kill, inspect, resume, compare; one row of faults.csv."""
    rank, phase, epoch = fault
    base = [sys.executable, "-m", "adaqp", "train", *train_argv, "--out", str(out)]
    env = {**os.environ, "ADAQP_FAULT": f"{rank}:{phase}:{epoch}"}
    job = run_job(base, out / "fault.log", env, timeout_s)
    fired = job["killed_at"] is not None
    named = f"rank {rank} failed: killed by signal 9 (SIGKILL)" in job["log"]
    ended = job["rc"] is not None and job["all_gone"] is not None
    exit_s = (job["all_gone"] - job["killed_at"]) if fired and ended else None
    loads, resumed_from, why = checkpoints_load(out / "checkpoints", world)
    clean_env = {k: v for k, v in os.environ.items() if k != "ADAQP_FAULT"}
    res = run_job([*base, "--resume"], out / "resume.log", clean_env, timeout_s)
    equal, diff = False, None
    if res["rc"] == 0:
        got = read_losses(out)
        want = {k: v for k, v in reference.items() if k[0] > (resumed_from if resumed_from is not None else -1)}
        equal = bool(got) and got.keys() == want.keys() and all(got[k] == want[k] for k in got)
        diff = max(abs(got[k] - want[k]) for k in got) if got.keys() == want.keys() and got else None
    return {"rank": rank, "phase": phase, "epoch": epoch, "fired": fired, "rc": job["rc"], "named": named,
            "exit_s": exit_s, "orphans": job["orphans"] + res["orphans"],
            "netns_left": job["netns_left"] + res["netns_left"], "checkpoint_loads": loads,
            "resume_epoch": resumed_from, "resume_rc": res["rc"], "resumed_equal": equal,
            "max_loss_diff": diff, "note": why or ("" if res["rc"] == 0 else _last_error(res["log"]))}


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if "error" in ln.lower()]
    return lines[-1][:200] if lines else ""
