"""Re-predict the peak memory of an ``adaqp validate`` table with the current memory model.

    python3 -m adaqp.experiments.repredict_memory docs/validate.csv [--layers 3] [--profile P] [--out new.csv]

The measured peaks stay as they were; each uniform-width row gets its prediction again from the
partition ``validate`` made (re-made here: METIS with the grid's seed is deterministic) and
``costmodel.memory.peak_memory_bytes``, with the process overhead on the first configuration of
each (dataset, ranks, link) cell, as ``validate`` runs them. Rows with adaptive widths are left
out (the BitPlan each run solved is not in the table), and so are rows without a measured peak.
Prints the median and max |error| before and after, overall and per schedule. Nothing is
fitted: the model only reads the plans.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import tempfile
from pathlib import Path

from adaqp.errors import AdaqpInputError, require

COLUMNS = ("dataset", "ranks", "link", "hidden", "model", "schedule", "bits", "mem_pred_MiB", "mem_meas_MiB")


def read_rows(path: Path) -> list[dict]:
    require(path.is_file(), f"{path}: no such file")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    require(rows, f"{path}: no rows")
    missing = [c for c in COLUMNS if c not in rows[0]]
    require(not missing, f"{path}: not a validate table (missing columns: {', '.join(missing)})")
    return rows


def first_of_cell(rows: list[dict]) -> list[bool]:
    """Whether each row is the first its process group ran (validate: one group per cell and dataset)."""
    seen, out = set(), []
    for r in rows:
        key = (r["dataset"], r["ranks"], r["link"])
        out.append(key not in seen)
        seen.add(key)
    return out


def repredict(rows: list[dict], layers: int, work: Path, cpu_memory=None) -> list[dict]:
    from adaqp import wire
    from adaqp.costmodel.memory import peak_memory_bytes
    from adaqp.costmodel.program import ModelShape
    from adaqp.costmodel.workload import PlanStats
    from adaqp.data.spec import load_dataset
    from adaqp.experiments.validate import Grid, plan_dir_for, train_configs
    from adaqp.halo import HaloPlan
    from adaqp.runtime.model import ModelConfig
    from adaqp.runtime.prepare import prepare_plan

    plans, out = {}, []
    for r, first in zip(rows, first_of_cell(rows)):
        if r["bits"] == "adaptive" or not _positive(r["mem_meas_MiB"]):
            continue  # no stored BitPlan; no measured peak (a platform without resident-set figures)
        ds, k = r["dataset"], int(r["ranks"])
        require(r["bits"].isdigit(), f"row {ds} {r['schedule']}: bits {r['bits']!r} is not a width")
        if (ds, k) not in plans:  # the partition validate made: its cell's first configuration's
            plan_dir = plan_dir_for(work, ds, k)
            plan_dir.mkdir(parents=True, exist_ok=True)
            grid = Grid(datasets=(ds,), ranks=(k,), layers=layers, profile_for=False)
            prepare_plan(train_configs(grid, ds, k, None)[0], plan_dir)
            plans[(ds, k)] = (PlanStats.from_halo_plan(HaloPlan.load(plan_dir)), load_dataset(ds))
        stats, graph = plans[(ds, k)]
        shape = ModelShape.of(ModelConfig(r["model"], layers, int(r["hidden"])), graph.num_features,
                              graph.num_classes)
        pred = float(peak_memory_bytes(stats, shape, wire.check_bits(int(r["bits"])), "cpu",
                                       first_in_process=first, cpu_memory=cpu_memory).max()) / 2**20
        meas = float(r["mem_meas_MiB"])
        out.append({**r, "mem_repred_MiB": pred, "mem_repred_err_pct": (pred / meas - 1) * 100})
    return out


def _positive(text: str) -> bool:
    try:
        return math.isfinite(float(text)) and float(text) > 0
    except ValueError:
        return False


def _err(r: dict, pred_key: str) -> float:
    return abs(float(r[pred_key]) / float(r["mem_meas_MiB"]) - 1) * 100


def report(rows: list[dict]) -> list[str]:
    """Median and max |error| of the table's predictions and the re-predictions, overall and per schedule."""
    def line(label: str, sel: list[dict]) -> str:
        old = [_err(r, "mem_pred_MiB") for r in sel]
        new = [_err(r, "mem_repred_MiB") for r in sel]
        signed = statistics.median(float(r["mem_repred_err_pct"]) for r in sel)
        return (f"{label:<10} {len(sel):>4}  table {statistics.median(old):5.1f} % / {max(old):5.1f} %"
                f"   now {statistics.median(new):5.1f} % / {max(new):5.1f} %  (median signed {signed:+.1f} %)")

    out = ["peak memory, busiest rank: median / max |error|, the table's predictions and the current model's"]
    out.append(line("all", rows))
    for schedule in dict.fromkeys(r["schedule"] for r in rows):
        out.append(line(schedule, [r for r in rows if r["schedule"] == schedule]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m adaqp.experiments.repredict_memory", description=__doc__.split("\n")[0])
    ap.add_argument("table", type=Path, help="a validate.csv")
    ap.add_argument("--layers", type=int, default=3, help="the GNN layers the table was run with (default 3)")
    ap.add_argument("--profile", default="cpu-2core",
                    help="the profile whose cpu_memory constants apply, if it has them (default cpu-2core)")
    ap.add_argument("--out", type=Path, default=None, help="write the rows with mem_repred_MiB / _err_pct here")
    args = ap.parse_args(argv)
    try:
        from adaqp.costmodel.profile import load_profile

        require(args.layers >= 1, f"--layers must be >= 1, got {args.layers}")
        cpu_memory = load_profile(args.profile).cpu_memory
        rows = read_rows(args.table)
        with tempfile.TemporaryDirectory(prefix="adaqp-repredict-") as work:
            got = repredict(rows, args.layers, Path(work), cpu_memory)
        require(got, f"{args.table}: no uniform-width rows to re-predict")
    except AdaqpInputError as e:
        print(f"repredict_memory: {e}", file=sys.stderr)
        return 2
    print("\n".join(report(got)))
    if args.out is not None:
        tmp = args.out.with_suffix(args.out.suffix + ".tmp")
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(got[0]))
            w.writeheader()
            w.writerows(got)
        tmp.replace(args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
