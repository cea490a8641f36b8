"""One command on one GPU: kernel benchmark, profile, then k ranks sharing the GPU, measured
epoch time beside the simulator's prediction.

    python3 -m adaqp.experiments.gpu_check --out DIR            # on the GPU machine (~4 min)
    python3 -m adaqp.experiments.gpu_check --out DIR --device cpu --dry   # the same path, tiny, CPU

Stages, each in its own try/except (GPU minutes are scarce: a failure is recorded and the next
stage runs):

1. ``kernels``: ``adaqp.experiments.bench_quant.run_grid(quick=True, device=...)`` when that
   module exists; its rows go to ``DIR/kernels.csv``.
2. ``profile``: ``runtime.profiling.profiler.measure(device, quick=True)`` -> ``DIR/profile.json`` (on a
   GPU: compute ops there, pinned copies, the host-staged exchange with 2 and 4 ranks sharing the
   GPU and its sync floors). If it fails, the bundled spec-derived profile stands in (marked).
3. ``train_k2``, ``train_k4``: :func:`adaqp.experiments.validate.run_cell` (the code path of
   ``adaqp validate``) with k ranks on the GPU over ``gloo-staged`` and the ClusterSpec
   :meth:`~adaqp.cluster.ClusterSpec.shared_gpu` built on the profile of stage 2 -- measured
   before any training, never fitted to it.

Outputs: ``DIR/gpu_check.json`` (environment, stages, profile figures, rows), ``DIR/gpu_check.csv``
(one row per k x schedule) and a table printed last.

Why this graph (see :data:`FULL`): an SBM of 200k nodes, mean degree 20, 128 features, homophily
0.98 so that METIS leaves ~10-20 % of a part's rows on its boundary (at the default 0.8 almost
every row is). A 3-layer GCN of width 128 then does ~4M-edge SpMMs (about a millisecond each on
an H200) while every exchange moves ~8-10 MB per rank at fp32, which the host-staged path
(~1 GB/s per rank) needs ~10 ms for: epochs of tens of ms, communication-bound at fp32 and
closer to balanced at 4 bits -- the regime where the schedules differ.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from adaqp.errors import AdaqpInputError, require


@dataclass(frozen=True)
class CheckPlan:
    dataset: str
    ranks: tuple[int, ...] = (2, 4)
    epochs: int = 12
    warmup: int = 4
    hidden: int = 128
    layers: int = 3
    schedules: tuple[str, ...] = ("vanilla", "overlap", "quant", "adaqp")
    bits: str = "4"
    timeout_s: float = 150.0  # per k: a hung rank must not eat the GPU's time
    profile_grid: object = field(default=None, repr=False)  # None: the quick grid of the device


FULL = CheckPlan("sbm:nodes=200000,classes=16,feat=128,deg=20,homophily=0.98,seed=0")


def dry_plan() -> CheckPlan:
    """Tiny sizes: every stage's code runs on CPU in well under a minute."""
    from adaqp.runtime.profiling.profiler import Grid

    tiny = Grid("tiny", spmm=((1000, 4000, 16), (4000, 40_000, 32)), gemm=((500, 16, 16), (2000, 64, 32)),
                elementwise=((500, 16), (4000, 32)), adam=(1000, 30_000), link_bytes=(1024, 65_536),
                allreduce_bytes=(4096, 65_536), copy_bytes=(4096, 65_536), warmup=1, reps=3, budget_s=0.02,
                sync_reps=4, sync_spmm=((500, 2000),), host_ranks=2,  # CPU-only tables: the path, not the figures
                interference={"rows": 4000, "nnz": 20_000, "width": 16, "reps": 3, "max_bytes": 1 << 20,
                              "corun_window_s": 0.05})
    return CheckPlan("sbm:nodes=2000,classes=4,feat=16,deg=8,homophily=0.9,seed=0", ranks=(2,), epochs=4,
                     warmup=1, hidden=16, layers=2, schedules=("vanilla", "adaqp"), timeout_s=120.0,
                     profile_grid=tiny)


# ---- stages -----------------------------------------------------------------------------------

def stage_kernels(out: Path, device: str, hook=None) -> dict:
    if hook is None:
        if importlib.util.find_spec("adaqp.experiments.bench_quant") is None:
            return {"skipped": "adaqp.experiments.bench_quant is not there"}
        from adaqp.experiments import bench_quant

        tiny = dict(widths=(8,), rows=(64,), bits=(2, 8)) if device == "cpu" else {}
        hook = lambda quick, device: bench_quant.run_grid(quick=quick, device=device, **tiny)  # noqa: E731
    rows = list(hook(quick=True, device=device))
    from adaqp.experiments.gpu_check_report import write_csv

    write_csv(out / "kernels.csv", rows)
    return {"rows": len(rows), "file": "kernels.csv"}


def stage_profile(out: Path, device: str, plan: CheckPlan) -> dict:
    from adaqp.runtime.profiling.profiler import measure

    kw = {"grid": plan.profile_grid} if plan.profile_grid is not None else {"quick": True}
    p = measure(device, nprocs=2, progress=False, name=f"{device}-gpu-check", **kw)
    p.save(out / "profile.json")
    return {"file": "profile.json", "elapsed_s": p.meta.get("elapsed_s")}


def fallback_profile(device: str) -> str:
    return "h200" if device == "cuda" else "cpu-2core"


def cluster_for_check(device: str, ranks: int, profile: str):
    """The ClusterSpec of k ranks on this machine: sharing one GPU (gloo-staged), or CPU ranks."""
    from dataclasses import replace

    from adaqp.cluster import ClusterSpec

    if device == "cuda":
        return ClusterSpec.shared_gpu(ranks, profile, device="gpu")
    return replace(ClusterSpec.local_cpu(ranks), profile=profile)


def stage_train(out: Path, device: str, plan: CheckPlan, ranks: int, profile: str) -> list[dict]:
    from adaqp.experiments.validate import Grid, run_cell

    grid = Grid(datasets=(plan.dataset,), ranks=(ranks,), links=(None,), schedules=plan.schedules,
                bits=(plan.bits,), models=("gcn",), epochs=plan.epochs, warmup=plan.warmup,
                hiddens=(plan.hidden,), layers=plan.layers, profile=profile, device=device,
                timeout_s=plan.timeout_s, profile_for=False)
    cluster = cluster_for_check(device, ranks, profile)
    cluster.to_yaml(out / f"cluster_k{ranks}.yaml")  # what was predicted for, beside the results
    with tempfile.TemporaryDirectory(prefix="adaqp-gpu-check-") as work:  # plans of 200k nodes: MBs
        rows = run_cell(grid, ranks, None, Path(work), cluster=cluster)
    return [{**r, "cluster": cluster.name, "transport": cluster.transport, "profile": profile} for r in rows]


# ---- the run ----------------------------------------------------------------------------------

def _stage(record: dict, name: str, fn, log):
    """Run one stage; record ok / seconds / the error (one line + traceback) and go on."""
    t0 = time.perf_counter()
    log(f"== {name} ...")
    try:
        value = fn()
        record[name] = {"ok": True, "seconds": round(time.perf_counter() - t0, 1)}
        log(f"== {name}: ok in {record[name]['seconds']} s")
        return value
    except Exception as e:  # noqa: BLE001 - the next stage runs regardless
        record[name] = {"ok": False, "seconds": round(time.perf_counter() - t0, 1),
                        "error": f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}",
                        "traceback": traceback.format_exc()[-4000:]}
        log(f"== {name}: FAILED ({record[name]['error']})")
        return None


def run(out: Path, device: str = "cuda", dry: bool = False, plan: CheckPlan | None = None,
        kernel_hook=None, log=print) -> dict:
    """All stages; returns what ``gpu_check.json`` holds. Importable (tests pass a fake hook)."""
    from adaqp.experiments import gpu_check_report as report

    require(device in ("cpu", "cuda"), f"--device must be cpu or cuda, got {device!r}")
    if device == "cpu":  # kernels run in Triton's interpreter, which is chosen when they are defined
        import os

        os.environ.setdefault("TRITON_INTERPRET", "1")
    if device == "cuda":
        import torch

        require(torch.cuda.is_available(), "--device cuda: no CUDA device here; use --device cpu --dry")
    plan = plan or (dry_plan() if dry else FULL)
    out.mkdir(parents=True, exist_ok=True)
    t_start, stages = time.perf_counter(), {}
    result = {**report.environment(device), "dry": dry, "plan": {k: v for k, v in plan.__dict__.items()
                                                               if k != "profile_grid"}, "stages": stages}
    kernels = _stage(stages, "kernels", lambda: stage_kernels(out, device, kernel_hook), log)
    result["kernels"] = kernels
    prof = _stage(stages, "profile", lambda: stage_profile(out, device, plan), log)
    profile = str(out / "profile.json") if prof else fallback_profile(device)
    result["profile_source"] = "measured by stage profile" if prof else (
        f"bundled {profile} (the measurement failed; spec-derived, NOT measured)")
    result["profile"] = _stage(stages, "profile_summary", lambda: report.profile_summary(profile, plan.ranks), log)
    rows: list[dict] = []
    for k in plan.ranks:
        got = _stage(stages, f"train_k{k}", lambda k=k: stage_train(out, device, plan, k, profile), log)
        rows.extend(got or [])
        report.write_outputs(out, result, rows)  # after every stage: a killed run keeps what it had
    result["rows"] = rows
    result["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    report.write_outputs(out, result, rows)
    log(report.table(rows, result))
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json / .csv, profile, kernels")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--dry", action="store_true", help="tiny sizes (the whole code path in < 1 min)")
    ap.add_argument("--ranks", default=None, help="comma list of ranks sharing the device (default 2,4; dry 2)")
    args = ap.parse_args(argv)
    try:
        plan = dry_plan() if args.dry else FULL
        if args.ranks:
            from dataclasses import replace

            ks = tuple(int(v) for v in args.ranks.split(",") if v.strip())
            require(ks and min(ks) >= 2, f"--ranks needs integers >= 2, got {args.ranks!r}")
            plan = replace(plan, ranks=ks)
        res = run(args.out, args.device, args.dry, plan)
    except (AdaqpInputError, ValueError) as e:
        print(f"gpu_check: {e}", file=sys.stderr)
        return 2
    return 0 if all(s["ok"] for s in res["stages"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

