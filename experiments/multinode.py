"""torchrun across emulated hosts, checked against a single-host run of the same configuration.

    python -m adaqp.experiments.multinode --nodes 2 --ranks-per-node 2 --link 1gbit --out DIR

Builds ``--nodes`` emulated hosts (one network namespace each, its own address on a bridge, both
directions of its NIC shaped to ``--link``; :mod:`adaqp.runtime.emulate`) and runs on every host
the torchrun command the README documents: c10d rendezvous on host A's address, Gloo bound to the
host's own interface. The same configuration then runs on one host (``adaqp train --nprocs N*R``,
local spawn) and the per-epoch, per-rank losses of the two are compared.

Two ways to get the partition, both run by default (``--plan-dir-mode``): ``shared``, made once by
``adaqp partition --out`` and read by every host through ``--plan-dir``; ``each``, every rank
partitions itself and the ranks check that their partitions agree.

Writes ``summary.json`` (``nodes``, ``world_size``, ``losses_equal``, ``max_loss_diff``,
``epoch_time_s_median``, ``test_acc`` and per-mode details), ``losses.csv`` and, per mode, each
run's own output folder and each host's log. Needs root and iproute2; exits 2 with one line when
they are missing or a flag is bad, 1 when a run fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from adaqp.cli.common import OneLineParser, positive_int
from adaqp.errors import AdaqpInputError, require

RDZV_PORT = 29500
# Equal means within this absolute difference. Gloo sums in an order fixed by the rank count, not by
# the hosts, so identical runs match bitwise; the slack only absorbs a reduction order that a
# different Gloo algorithm choice could bring, and is far below a real divergence (a changed
# partition or seed moves the loss by >= 1e-3 from the first epoch).
LOSS_TOL = 1e-6


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m adaqp.experiments.multinode", description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=positive_int, default=2, help="emulated hosts (>= 2; default 2)")
    p.add_argument("--ranks-per-node", type=positive_int, default=2, help="torchrun --nproc-per-node")
    p.add_argument("--link", default="1gbit", help="each host's NIC rate per direction (default 1gbit)")
    p.add_argument("--out", type=Path, required=True, help="folder for summary.json, logs and runs")
    p.add_argument("--dataset", default="cora")
    p.add_argument("--model", choices=("gcn", "sage"), default="gcn")
    p.add_argument("--layers", type=positive_int, default=2)
    p.add_argument("--hidden", type=positive_int, default=64)
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plan-dir-mode", choices=("both", "shared", "each"), default="both",
                   help="shared: one partition read by every host; each: every rank partitions")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds a whole run may take")
    return p


def _progress(msg: str) -> None:
    print(f"multinode: {msg}", file=sys.stderr, flush=True)


def train_args(args) -> list[str]:
    """The configuration, identical for the torchrun and the single-host run (fp32, vanilla)."""
    return [args.dataset, "--model", args.model, "--layers", str(args.layers), "--hidden", str(args.hidden),
            "--epochs", str(args.epochs), "--seed", str(args.seed), "--schedule", "vanilla", "--bits", "32",
            "--timeout", str(min(args.timeout, 120.0))]


def torchrun_cmd(args, node: int, endpoint: str, run_id: str, local_addr: str, extra: list[str]) -> list[str]:
    """One host's command. ``--local-addr`` and ``is_host``: a namespace shares the machine's host
    name, which resolves to an address it does not have, so torchrun cannot work either out itself."""
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(args.nodes), "--node-rank", str(node),
            "--nproc-per-node", str(args.ranks_per_node), "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint,
            "--rdzv-id", run_id, "--rdzv-conf", f"is_host={int(node == 0)}", "--local-addr", local_addr,
            "-m", "adaqp", "train", *train_args(args), "--launcher", "torchrun", *extra]


def _wait_all(procs: list[tuple[str, subprocess.Popen, Path]], timeout_s: float) -> None:
    """Wait for every process; on a failure or the deadline kill them all and raise one line."""
    deadline = time.monotonic() + timeout_s
    try:
        while any(p.poll() is None for _, p, _ in procs):
            failed = [(n, p, log) for n, p, log in procs if p.poll() not in (None, 0)]
            if failed or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for name, p, log in procs:
            if p.poll() is None:
                raise RuntimeError(f"{name} still running after {timeout_s:.0f} s (log: {log})")
            if p.returncode != 0:
                raise RuntimeError(f"{name} exited with code {p.returncode}: {_last_line(log)} (log: {log})")
    finally:
        for _, p, _ in procs:
            if p.poll() is None:
                os.killpg(p.pid, 9)  # its own process group: torchrun's agent and its ranks go together
                p.wait()


def _last_line(log: Path) -> str:
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if "error" in ln.lower()]
    return lines[-1][:300] if lines else "no error line in its log"


def _start(name: str, cmd: list[str], log: Path, env: dict) -> tuple[str, subprocess.Popen, Path]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        f.write(" ".join(cmd) + "\n")
        f.flush()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return name, proc, log


def _losses(run_dir: Path) -> dict[tuple[int, int], float]:
    import csv

    with open(run_dir / "epochs.csv") as f:
        return {(int(r["epoch"]), int(r["rank"])): float(r["loss"]) for r in csv.DictReader(f)}


def run_mode(args, net, mode: str, port: int, env: dict) -> dict:
    """One multi-host run and its single-host twin; their losses compared."""
    from adaqp.io import read_json

    base = args.out / mode
    world = args.nodes * args.ranks_per_node
    for d in [*(f"host{i}" for i in range(args.nodes)), "single"]:  # a stale result would pass for this run's
        (base / d / "summary.json").unlink(missing_ok=True)
    extra: list[str] = []
    if mode == "shared":
        plan = base / "plan"
        _progress(f"[{mode}] partitioning once into {plan}")
        _wait_all([_start("adaqp partition", [sys.executable, "-m", "adaqp", "partition", args.dataset,
                                              "--parts", str(world), "--seed", str(args.seed), "--out", str(plan)],
                          base / "partition.log", env)], args.timeout)
        extra = ["--plan-dir", str(plan)]
    endpoint = f"{net.addresses[0]}:{port}"
    _progress(f"[{mode}] torchrun on {args.nodes} hosts x {args.ranks_per_node} ranks, rendezvous {endpoint}")
    t0, tx0 = time.monotonic(), [_tx_bytes(ns) for ns in net.namespaces]
    hosts = [_start(f"host {i} torchrun", ["ip", "netns", "exec", ns,
                                           *torchrun_cmd(args, i, endpoint, f"adaqp-{mode}", net.addresses[i],
                                                         [*extra, "--out", str(base / f"host{i}")])],
                    base / f"host{i}.log", env) for i, ns in enumerate(net.namespaces)]
    _wait_all(hosts, args.timeout)
    multi_s = time.monotonic() - t0
    written = [base / f"host{i}" for i in range(args.nodes) if (base / f"host{i}" / "summary.json").is_file()]
    require(len(written) == 1, f"[{mode}] expected exactly one host to write the results (rank 0's), got {len(written)}")
    _progress(f"[{mode}] the same configuration on one host: adaqp train --nprocs {world}")
    single = base / "single"
    _wait_all([_start("single-host run", [sys.executable, "-m", "adaqp", "train", *train_args(args),
                                          "--nprocs", str(world), *extra, "--out", str(single)],
                      base / "single.log", env)], args.timeout)
    a, b = _losses(written[0]), _losses(single)
    require(a.keys() == b.keys(), f"[{mode}] the runs recorded different (epoch, rank) sets")
    diffs = {k: abs(a[k] - b[k]) for k in a}
    s_multi, s_single = read_json(written[0] / "summary.json"), read_json(single / "summary.json")
    return {
        "losses_equal": max(diffs.values()) <= LOSS_TOL, "losses_bitwise": all(a[k] == b[k] for k in a),
        "max_loss_diff": max(diffs.values()), "epoch_time_s_median": s_multi["epoch_time_s_median"],
        "single_host_epoch_time_s_median": s_single["epoch_time_s_median"], "test_acc": s_multi["test_acc"],
        "single_host_test_acc": s_single["test_acc"], "wall_s": multi_s, "results_from": str(written[0]),
        "host_tx_bytes": [_tx_bytes(ns) - b for ns, b in zip(net.namespaces, tx0)],
        "torchrun_command_host0": " ".join(torchrun_cmd(args, 0, endpoint, f"adaqp-{mode}", net.addresses[0],
                                                        [*extra, "--out", str(base / "host0")])),
        "rows": [{"mode": mode, "epoch": e, "rank": r, "loss_multi_host": a[(e, r)], "loss_single_host": b[(e, r)],
                  "abs_diff": diffs[(e, r)]} for e, r in sorted(a)],
    }


def _tx_bytes(ns: str) -> int:
    """Bytes the host's NIC has sent since it was created (the proof that the ranks talked over it)."""
    from adaqp.runtime.emulate import IFNAME

    text = subprocess.run(["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{IFNAME}/statistics/tx_bytes"],
                          capture_output=True, text=True).stdout.strip()
    return int(text) if text.isdigit() else -1


def run(args) -> dict:
    from adaqp.cluster import parse_bandwidth_Bps
    from adaqp.io import write_csv, write_summary
    from adaqp.runtime.emulate import IFNAME, EmulatedNetwork, check_available

    require(args.nodes >= 2, f"a multi-node run needs --nodes >= 2, got {args.nodes}")
    require(args.timeout > 0, f"--timeout must be positive, got {args.timeout}")
    rate_bps = parse_bandwidth_Bps(args.link, "--link") * 8
    require(not args.out.exists() or args.out.is_dir(), f"--out {args.out} exists and is not a folder")
    check_available()
    args.out = args.out.resolve()
    (args.out / "summary.json").unlink(missing_ok=True)
    world = args.nodes * args.ranks_per_node
    modes = ("shared", "each") if args.plan_dir_mode == "both" else (args.plan_dir_mode,)
    # one thread per rank on every run: the hosts share this machine's cores, and equal thread
    # counts keep the single-host run's arithmetic the same as the multi-host one's
    env = {**os.environ, "GLOO_SOCKET_IFNAME": IFNAME, "TORCH_CPP_LOG_LEVEL": "ERROR",
           "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // world))}
    results = {}
    _progress(f"building {args.nodes} emulated hosts with {args.link} links")
    with EmulatedNetwork(args.nodes, rate_bps) as net:
        for i, mode in enumerate(modes):
            results[mode] = run_mode(args, net, mode, RDZV_PORT + i, env)
            _progress(f"[{mode}] max |loss difference| {results[mode]['max_loss_diff']:.3g}, "
                      f"equal: {results[mode]['losses_equal']}")
    rows = [r for res in results.values() for r in res.pop("rows")]
    headline = results[modes[0]]
    summary = {"nodes": args.nodes, "ranks_per_node": args.ranks_per_node, "world_size": world,
               "link": args.link, "link_bps": rate_bps, "dataset": args.dataset, "epochs": args.epochs,
               "losses_equal": all(r["losses_equal"] for r in results.values()),
               "losses_bitwise": all(r["losses_bitwise"] for r in results.values()),
               "max_loss_diff": max(r["max_loss_diff"] for r in results.values()), "loss_tol": LOSS_TOL,
               "epoch_time_s_median": headline["epoch_time_s_median"], "test_acc": headline["test_acc"],
               "modes": results}
    write_csv(args.out / "losses.csv", rows)
    write_summary(args.out, summary)  # last, and atomic: its presence means the run completed
    return summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        s = run(args)
    except AdaqpInputError as e:
        print(f"multinode: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        print(f"multinode: failed: {e}", file=sys.stderr)
        return 1
    _progress(f"done: losses equal {s['losses_equal']} (max diff {s['max_loss_diff']:.3g}), median epoch "
              f"{s['epoch_time_s_median'] * 1e3:.1f} ms, test acc {s['test_acc']:.3f}; wrote {args.out}/summary.json")
    return 0 if s["losses_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
