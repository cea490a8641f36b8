"""Predict the GPU check's configurations for a GPU before it is measured, and later compare.

    python3 -m adaqp.experiments.gpu_predict --profile h100 --out experiments/results/predictions-h100.csv
    python3 -m adaqp.experiments.gpu_predict --compare experiments/results/predictions-h100.csv DIR/gpu_check.csv

The first form runs here, without a GPU: it partitions the GPU check's graph (``gpu_check.FULL``)
exactly as the check will and simulates every configuration (k ranks sharing one GPU over
``gloo-staged``, each schedule, 4 bits) with the named profile. Committing that file before the
device run is what makes the comparison a test of the model rather than a fit to the run.

The second form puts a ``gpu_check.csv`` measured on the device beside the committed predictions:
error per configuration and per phase (exposed communication, the rest).
"""

from __future__ import annotations

import argparse
import csv
import time
import subprocess
import tempfile
from pathlib import Path

from adaqp.errors import require
from adaqp.io import write_csv

KEYS = ("ranks", "schedule", "bits")


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def predictions(profile: str, check=None, log=print) -> list[dict]:
    """One row per configuration of ``check`` (default ``gpu_check.FULL``): the simulator's epoch
    and its phases."""
    from adaqp.experiments.gpu_check import FULL
    from adaqp.experiments.gpu_repredict import predict

    plan = {k: getattr(check or FULL, k) for k in ("dataset", "ranks", "epochs", "warmup", "hidden", "layers",
                                          "schedules", "bits")}
    stamp = {"profile": profile, "predicted_on": time.strftime("%Y-%m-%d"), "commit": _commit()}
    with tempfile.TemporaryDirectory(prefix="adaqp-gpu-predict-") as work:
        rows = predict(plan, profile, Path(work), log)
    return [{"ranks": r["ranks"], "schedule": r["schedule"], "bits": r["bits"],
             "epoch_pred_ms": r["epoch_pred_ms"], "comm_pred_ms": r["comm_pred_ms"],
             "compute_pred_ms": r["compute_pred_ms"], **stamp} for r in rows]


def _read(path: Path) -> dict[tuple, dict]:
    require(Path(path).is_file(), f"{path}: no such file")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    require(rows and all(k in rows[0] for k in KEYS), f"{path}: not a table with columns {', '.join(KEYS)}")
    return {tuple(str(r[k]) for k in KEYS): r for r in rows}


def compare(predicted: Path, measured: Path) -> list[dict]:
    """Error of every committed prediction against the measured row of the same configuration."""
    pred, meas = _read(predicted), _read(measured)
    missing = sorted(set(pred) - set(meas))
    require(not missing, f"{measured}: no measured row for {missing[:1]} (ranks, schedule, bits)")
    out = []
    for key, p in pred.items():
        m = meas[key]
        row = {"ranks": key[0], "schedule": key[1], "bits": key[2], "profile": p["profile"]}
        for phase in ("epoch", "comm", "compute"):
            pv, mv = float(p[f"{phase}_pred_ms"]), float(m[f"{phase}_meas_ms"])
            row.update({f"{phase}_meas_ms": mv, f"{phase}_pred_ms": pv,
                        f"{phase}_err_pct": (pv / mv - 1) * 100 if mv > 0 else float("nan")})
        out.append(row)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="h100", help="profile to predict with (default: h100)")
    ap.add_argument("--out", type=Path, default=None, help="write the predictions here (.csv)")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("PREDICTIONS", "MEASURED"),
                    help="committed predictions and a gpu_check.csv measured on the device")
    args = ap.parse_args(argv)
    if args.compare:
        rows = compare(*args.compare)
        for r in rows:
            print(f"{r['ranks']:>2} {r['schedule']:>8} {r['bits']:>2}  epoch {r['epoch_meas_ms']:8.1f} ms "
                  f"measured, {r['epoch_pred_ms']:8.1f} predicted ({r['epoch_err_pct']:+6.1f} %); "
                  f"comm {r['comm_err_pct']:+6.1f} %, compute {r['compute_err_pct']:+6.1f} %")
    else:
        rows = predictions(args.profile)
        for r in rows:
            print(f"{r['ranks']:>2} {r['schedule']:>8} {r['bits']:>2}  epoch {r['epoch_pred_ms']:8.2f} ms "
                  f"(comm {r['comm_pred_ms']:.2f}, compute {r['compute_pred_ms']:.2f}), profile {r['profile']}")
    if args.out:
        write_csv(args.out, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
