"""What ``adaqp validate`` reports about its rows: error figures overall, per workload, per phase,
with the configurations that put more ranks than cores on this machine apart, and the scatter."""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from adaqp.experiments.validate import PHASES, Grid

TARGET = {"median_abs_err_pct": 5.0, "max_abs_err_pct": 15.0}
WORKLOAD_MEDIAN_TARGET_PCT = 8.0


def error_stats(rows: list[dict], key: str = "epoch_err_pct") -> dict:
    """Median and max |error| of ``key`` over ``rows``, and how many are within 5 and 15 %."""
    errs = [abs(r[key]) for r in rows if r[key] == r[key]]
    if not errs:
        return {"configs": 0, "median_abs_err_pct": None, "max_abs_err_pct": None}
    return {"configs": len(errs), "median_abs_err_pct": statistics.median(errs), "max_abs_err_pct": max(errs),
            "within_5_pct": sum(e <= 5 for e in errs), "within_15_pct": sum(e <= 15 for e in errs)}


def _phases(rows: list[dict]) -> dict:
    return {ph: {k: v for k, v in error_stats(rows, f"{ph}_err_pct").items() if k != "configs"}
            for ph in PHASES}


def _group(rows: list[dict], key) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


def workload_of(r: dict, short: bool = False) -> str:
    """A row's workload: its dataset spec (``short``: the graph kind) and hidden width."""
    dataset = str(r.get("dataset", "?"))
    return f"{dataset.split(':')[0] if short else dataset} h{r.get('hidden', '?')}"


def _spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "max": max(values)} if values else {}


def summarize(rows: list[dict], grid: Grid, extrapolated: list | None = None,
              cores: int | None = None) -> dict:
    """The headline (every configuration), then per workload, per (ranks, link) cell and per
    schedule, each with its per-phase errors; ``oversubscribed``: the configurations with more
    ranks than ``cores`` (default: this machine's), where ranks time-share the CPU."""
    cores = cores or os.cpu_count() or 1
    head = error_stats(rows)
    worst = max(rows, key=lambda r: abs(r["epoch_err_pct"])) if rows else None
    per_workload = {w: {**error_stats(rs), "per_phase": _phases(rs)}
                    for w, rs in _group(rows, workload_of).items()}
    over = [r for r in rows if r["ranks"] > cores]
    within = [r for r in rows if r["ranks"] <= cores]
    met = (head["configs"] > 0 and head["median_abs_err_pct"] <= TARGET["median_abs_err_pct"]
           and head["max_abs_err_pct"] <= TARGET["max_abs_err_pct"])
    return {**head, "per_phase": _phases(rows), "target_met": met,
            "workloads_met": all(w["median_abs_err_pct"] <= WORKLOAD_MEDIAN_TARGET_PCT
                                 for w in per_workload.values() if w["configs"]),
            "per_workload": per_workload,
            "per_cell": {k: {**error_stats(rs), "mean_err_pct": statistics.fmean(r["epoch_err_pct"] for r in rs)}
                         for k, rs in _group(rows, lambda r: f"{r['ranks']} ranks, {r['link']}").items()},
            "per_schedule": {k: error_stats(rs) for k, rs in _group(rows, lambda r: r["schedule"]).items()},
            "cores": cores,
            "oversubscribed": {**error_stats(over), "per_phase": _phases(over)},
            "within_cores": {**error_stats(within), "per_phase": _phases(within)},
            "extrapolated": list(extrapolated or []), "worst": worst,
            # predicted vs measured peak memory of the busiest rank (costmodel/memory.py, runtime/memory.py)
            "memory": error_stats([r for r in rows if "mem_err_pct" in r], "mem_err_pct"),
            # with rounds > 1: how far one configuration's measured epoch moved between rounds
            "measured_spread_pct": _spread([r["epoch_meas_spread_pct"] for r in rows if "epoch_meas_spread_pct" in r]),
            # with rounds > 1: each configuration's worst round, for the median measurement (the
            # noise floor of a one-round run) and for the prediction
            "noise_floor_pct": _spread([r["epoch_meas_dev_pct"] for r in rows if "epoch_meas_dev_pct" in r]),
            "worst_round_err_pct": _spread([r["epoch_err_worst_round_pct"] for r in rows
                                            if "epoch_err_worst_round_pct" in r]),
            # within one run: the interquartile range of a configuration's measured epochs / median
            "epoch_iqr_pct": _spread([r["epoch_meas_iqr_pct"] for r in rows if "epoch_meas_iqr_pct" in r]),
            "grid": {k: v for k, v in grid.__dict__.items()}}


def workload_table(summary: dict) -> list[dict]:
    """One row per workload for the printed table."""
    out = []
    for w, s in summary["per_workload"].items():
        out.append({"workload": w, "configs": s["configs"], "median_pct": s["median_abs_err_pct"],
                    "max_pct": s["max_abs_err_pct"],
                    "compute_median_pct": s["per_phase"]["compute"]["median_abs_err_pct"],
                    "comm_median_pct": s["per_phase"]["comm"]["median_abs_err_pct"]})
    return out


def scatter(path: Path, rows: list[dict]) -> Path:
    """Predicted vs measured epoch time, log-log, with y = x and a +-15 % band; one colour per
    workload (graph kind and hidden width), one marker per schedule."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    from adaqp.experiments.plotting import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    marks = {"vanilla": "o", "overlap": "s", "quant": "^", "adaqp": "D"}
    label = lambda r: workload_of(r, short=True)  # noqa: E731
    workloads = list(dict.fromkeys(label(r) for r in rows))
    cmap = plt.get_cmap("tab10")
    colours = {w: cmap(i % 10) for i, w in enumerate(workloads)}
    for r in rows:
        ax.scatter(r["epoch_meas_ms"], r["epoch_pred_ms"], marker=marks.get(r["schedule"], "x"),
                   color=colours[label(r)], s=18, alpha=0.8, zorder=3)
    lo = min(min(r["epoch_meas_ms"], r["epoch_pred_ms"]) for r in rows) * 0.8
    hi = max(max(r["epoch_meas_ms"], r["epoch_pred_ms"]) for r in rows) * 1.25
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8, label="y = x", zorder=2)
    ax.fill_between([lo, hi], [lo * 0.85, hi * 0.85], [lo * 1.15, hi * 1.15], color="0.88", label="±15 %", zorder=1)
    for s, m in marks.items():
        ax.scatter([], [], marker=m, color="0.3", label=s)
    for w, c in colours.items():
        ax.scatter([], [], marker="o", color=c, label=w)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    for axis in (ax.xaxis, ax.yaxis):  # plain numbers, major ticks only (minor labels collide)
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("measured epoch time (ms)")
    ax.set_ylabel("predicted epoch time (ms)")
    ax.legend(fontsize=6, loc="upper left")
    ax.set_title(f"{len(rows)} configurations, predicted (simulator) vs measured", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
