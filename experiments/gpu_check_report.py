"""What ``gpu_check`` writes: environment, the profile's shared-GPU figures (with a check of the
host-staged exchange against the cost model's decomposition), CSV / JSON and the closing table."""

from __future__ import annotations

import platform
import socket
from datetime import datetime, timezone
from pathlib import Path

from adaqp.io import write_csv, write_json

CSV_COLUMNS = ("ranks", "schedule", "bits", "epoch_meas_ms", "epoch_pred_ms", "epoch_err_pct",
               "comm_meas_ms", "comm_pred_ms", "compute_meas_ms", "compute_pred_ms", "cluster",
               "transport", "profile")


def environment(device: str) -> dict:
    import torch

    try:
        import triton

        triton_version = triton.__version__
    except Exception:  # noqa: BLE001 - absent on CPU machines: an answer, not an error
        triton_version = None
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else None
    return {"gpu": gpu or "none (CPU dry run)", "device": device, "host": socket.gethostname(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "python": platform.python_version(),
            "torch": torch.__version__, "cuda": torch.version.cuda, "triton": triton_version,
            "gpus_visible": torch.cuda.device_count() if torch.cuda.is_available() else 0}


def _link(lk) -> dict:
    return {"latency_us": round(lk.latency_s * 1e6, 2), "GBps": round(lk.bw_Bps / 1e9, 4)}


def staged_check(profile, ranks: int) -> dict | None:
    """The measured host-staged exchange (profile meta) beside the cost model's time for the same
    bytes on the shared-GPU cluster (D2H + Gloo endpoint + H2D, sync floor): does the model's
    decomposition add up? None when the profile did not measure it (CPU, spec-derived)."""
    import numpy as np

    from adaqp.costmodel.network import exchange_s
    from adaqp.experiments.gpu_check import cluster_for_check

    got = (profile.meta.get("staged_exchange") or {}).get(str(ranks))
    if not got or not got.get("points"):
        return None
    cluster = cluster_for_check("cuda", ranks, profile.name)
    rows = []
    for p in (got["points"][0], got["points"][-1]):  # the smallest and the largest message
        B = np.full((ranks, ranks), float(p["nbytes"]))
        np.fill_diagonal(B, 0.0)
        pred, where = exchange_s(cluster, profile, B)
        rows.append({"nbytes_per_peer": p["nbytes"], "measured_ms": p["median_s"] * 1e3,
                     "model_ms": pred * 1e3, "bottleneck": where})
    return {"fit_GBps": got["bw_Bps"] / 1e9, "fit_latency_us": got["latency_s"] * 1e6, "points": rows}


def profile_summary(name_or_path: str, ranks) -> dict:
    from adaqp.costmodel.profile import load_profile

    p = load_profile(name_or_path)
    m = p.meta
    out = {"name": p.name, "kind": p.kind, "device_name": m.get("device_name"), "date": m.get("date"),
           "elapsed_s": m.get("elapsed_s"), "interference": p.interference,
           "links": {k: _link(v) for k, v in p.links.items()},
           "sync_s": dict(p.sync_s), "allreduce_sync_s": dict(p.allreduce_sync_s),
           "spmm_fwd_ms_2M_edges_w128": p.op("spmm_fwd", rows=100_000, nnz=2_000_000, width=128) * 1e3}
    per_rank = (m.get("interference") or {}).get("per_rank") or []
    if per_rank and all("solo_s" in r for r in per_rank):  # time-sharing: k ranks at once vs one alone
        out["alone_over_solo"] = [round(r["alone_s"][0] / r["solo_s"][0], 3) for r in per_rank]
    if p.device == "cuda":
        out["staged_check"] = {str(k): staged_check(p, k) for k in ranks}
    return out


def write_outputs(out: Path, result: dict, rows: list[dict]) -> None:
    write_json(out / "gpu_check.json", {**result, "rows": rows})
    write_csv(out / "gpu_check.csv", rows, CSV_COLUMNS)


def _f(v, fmt: str) -> str:
    return format(v, fmt) if isinstance(v, (int, float)) and v == v else "-"


def table(rows: list[dict], result: dict) -> str:
    lines = [f"gpu_check on {result['gpu']} ({result['date']}, torch {result['torch']}, triton {result['triton']})"]
    for name, s in result["stages"].items():
        lines.append(f"  stage {name:16s} {'ok' if s['ok'] else 'FAILED: ' + s['error']} ({s['seconds']} s)")
    lines.append(f"  profile: {result.get('profile_source')}")
    lines.append(f"{'ranks':>5} {'schedule':>8} {'bits':>4} {'measured ms':>12} {'predicted ms':>13} {'error %':>8}")
    for r in rows:
        lines.append(f"{r['ranks']:>5} {r['schedule']:>8} {r['bits']:>4} {_f(r['epoch_meas_ms'], '12.2f')} "
                     f"{_f(r['epoch_pred_ms'], '13.2f')} {_f(r['epoch_err_pct'], '+8.1f')}")
    if not rows:
        lines.append("  (no training rows)")
    return "\n".join(lines)
