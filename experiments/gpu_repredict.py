"""Predict a recorded GPU check again with the current cost model, without a GPU.

    python3 -m adaqp.experiments.gpu_repredict experiments/results/h200-2026-11-26 [--out FILE.csv]

Reads what ``experiments/gpu_check.py`` left in a folder (``gpu_check.json`` for the plan,
``gpu_check.csv`` for the measured epochs, ``profile.json`` measured on that GPU before any
training), partitions the same graph here, and runs the simulator for every configuration with
the model as it is now. Profiles written before the network model costed host-staged exchanges
by their own measurement keep that measurement in ``meta.staged_exchange``; it becomes the
``staged@k`` link (nothing else changes).

A re-prediction is a post-hoc check: the model it runs may have been shaped after the measured
run was seen. Only a prediction recorded before a run validates the model independently.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from dataclasses import replace
from pathlib import Path

from adaqp.errors import require
from adaqp.io import write_csv


def profile_with_staged(path: Path, out: Path) -> Path:
    """``path``'s profile with ``staged@k`` links from its own staged-exchange measurement."""
    from adaqp.costmodel.profile import LinkModel, load_profile

    prof = load_profile(path)
    staged = dict(prof.meta.get("staged_exchange") or {})
    links = dict(prof.links)
    for k, fit in staged.items():
        links.setdefault(f"staged@{k}", LinkModel(float(fit["latency_s"]), float(fit["bw_Bps"])))
    return replace(prof, links=links).save(out)


def _partition_only(cfgs, plan_dir: Path, link):
    """A ``run_configs`` stand-in: prepares the plan, trains nothing (one empty epoch record)."""
    from adaqp.runtime.run import prepared_plan_dir

    prepared_plan_dir(cfgs[0], plan_dir)
    record = {"epoch": 0, "epoch_time_s": 0.0}
    return [[{"records": [record]}] * cfgs[0].nprocs for _ in cfgs]


def predict(plan: dict, profile: str, work: Path, log=print) -> list[dict]:
    """The simulator's rows for every configuration of a gpu_check ``plan`` with ``profile``."""
    from adaqp.cluster import ClusterSpec
    from adaqp.experiments.validate import Grid, run_cell

    rows = []
    for k in plan["ranks"]:
        grid = Grid(datasets=(plan["dataset"],), ranks=(k,), links=(None,), schedules=tuple(plan["schedules"]),
                    bits=(plan["bits"],), models=("gcn",), epochs=plan["epochs"], warmup=plan["warmup"],
                    hiddens=(plan["hidden"],), layers=plan["layers"], profile=str(profile), device="cuda",
                    profile_for=False)
        log(f"· {k} ranks: partitioning {plan['dataset']} and simulating {len(grid.points())} configurations")
        cluster = ClusterSpec.shared_gpu(k, str(profile), device="gpu")
        rows += run_cell(grid, k, None, Path(work), runner=_partition_only, cluster=cluster)
    return rows


def repredict(folder: Path, log=print, check: bool = True) -> list[dict]:
    """``check``: require that the recorded profile gives the recorded predictions back (same
    partition and simulator); without it, the current model's predictions are reported beside the
    recorded ones whatever changed."""
    folder = Path(folder)
    for name in ("gpu_check.json", "gpu_check.csv", "profile.json"):
        require((folder / name).is_file(), f"{folder}: no {name} (not a gpu_check output folder)")
    plan = json.loads((folder / "gpu_check.json").read_text())["plan"]
    measured = list(csv.DictReader(open(folder / "gpu_check.csv")))
    rows = []
    with tempfile.TemporaryDirectory(prefix="adaqp-repredict-") as work:
        prof = profile_with_staged(folder / "profile.json", Path(work) / "profile.json")
        # the recorded profile as it was must give the recorded predictions back (same graph,
        # same partition, same simulator), else this folder cannot be re-predicted here
        then = predict(plan, str(folder / "profile.json"), Path(work), log=lambda *a: None)
        for new, again in zip(predict(plan, str(prof), Path(work), log), then):
            k = new["ranks"]
            old = next(m for m in measured if int(m["ranks"]) == k and m["schedule"] == new["schedule"])
            require(not check or abs(again["epoch_pred_ms"] / float(old["epoch_pred_ms"]) - 1) < 1e-3,
                    f"{folder}: the recorded prediction for {k} ranks, {new['schedule']} "
                    f"({float(old['epoch_pred_ms']):.3f} ms) does not come back here "
                    f"({again['epoch_pred_ms']:.3f} ms): a different partition or simulator")
            meas = float(old["epoch_meas_ms"])
            rows.append({"ranks": k, "schedule": new["schedule"], "bits": new["bits"], "measured_ms": meas,
                         "recorded_pred_ms": float(old["epoch_pred_ms"]), "pred_ms": new["epoch_pred_ms"],
                         "recorded_err_pct": float(old["epoch_err_pct"]),
                         "err_pct": (new["epoch_pred_ms"] / meas - 1) * 100,
                         "comm_meas_ms": float(old["comm_meas_ms"]), "comm_pred_ms": new["comm_pred_ms"]})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="a gpu_check output folder")
    ap.add_argument("--out", type=Path, default=None, help="write the table here (.csv)")
    ap.add_argument("--no-check", dest="check", action="store_false",
                    help="the simulator changed since the recording: do not require the recorded predictions back")
    args = ap.parse_args(argv)
    rows = repredict(args.folder, check=args.check)
    print(f"{'ranks':>5} {'schedule':>9} {'bits':>4} {'measured':>9} {'recorded pred':>14} {'pred now':>9} "
          f"{'err then':>9} {'err now':>8}")
    for r in rows:
        print(f"{r['ranks']:>5} {r['schedule']:>9} {r['bits']:>4} {r['measured_ms']:>9.1f} "
              f"{r['recorded_pred_ms']:>14.1f} {r['pred_ms']:>9.1f} {r['recorded_err_pct']:>+8.1f}% "
              f"{r['err_pct']:>+7.1f}%")
    if args.out:
        write_csv(args.out, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
