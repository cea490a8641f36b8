"""The two plots of ``adaqp whatif``: a heatmap over devices x bandwidth and epoch-time lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adaqp.experiments.plotting import pyplot as _plt


def _fmt_s(s: float) -> str:
    return f"{s * 1e3:.0f} ms" if s < 1 else f"{s:.2g} s"


def heatmap_plot(path: Path, rows: list[dict], schedule: str, title: str, target_s: float | None = None,
                 best: dict | None = None) -> Path:
    """Predicted epoch time of ``schedule`` over devices (y) x bandwidth (x), one panel per GDR
    setting; each cell also gives the speedup over vanilla; cells where ``schedule`` meets the
    target are outlined and ``best`` (the cheapest such row of ``schedule``) is starred."""
    plt = _plt()
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import FuncFormatter

    mine = [r for r in rows if r["schedule"] == schedule]
    devs = sorted({r["devices"] for r in mine})
    nodes = {r["devices"]: r["nodes"] for r in mine}
    bws = sorted({(r["bandwidth_Bps"], r["bandwidth"]) for r in mine})
    gdrs = sorted({r["gdr"] for r in mine}, reverse=True)  # "on" first
    cell = {(r["devices"], r["bandwidth_Bps"], r["gdr"]): r for r in mine}
    times = np.array([r["epoch_time_s"] for r in mine])
    norm = LogNorm(vmin=max(times.min(), 1e-9), vmax=max(times.max(), times.min() * 1.01, 1e-9))
    fig, axes = plt.subplots(1, len(gdrs), figsize=(1.6 + 1.0 * len(bws) * len(gdrs), 1.5 + 0.42 * len(devs)),
                             squeeze=False, layout="constrained")
    im = None
    for ax, g in zip(axes[0], gdrs):
        grid = np.array([[cell[(d, bw, g)]["epoch_time_s"] for bw, _ in bws] for d in devs])
        im = ax.imshow(grid, cmap="viridis_r", norm=norm, aspect="auto", origin="lower")
        ax.set_xticks(range(len(bws)), [lab for _, lab in bws], fontsize=7)
        ax.set_yticks(range(len(devs)), [f"{d}\n{nodes[d]} node{'s' if nodes[d] > 1 else ''}" for d in devs],
                      fontsize=6.5)
        ax.set_xlabel("network bandwidth per node", fontsize=8)
        ax.set_ylabel("devices", fontsize=8)
        ax.set_title(f"GPUDirect RDMA {g}", fontsize=8)
        for i, d in enumerate(devs):
            for j, (bw, _) in enumerate(bws):
                r = cell[(d, bw, g)]
                dark = np.log(r["epoch_time_s"]) > (np.log(norm.vmin) + np.log(norm.vmax)) / 2
                txt = f"{_fmt_s(r['epoch_time_s'])}\n×{r['speedup']:.2f}" + ("" if r["fits_memory"] else "\nOOM")
                ax.text(j, i, txt, ha="center", va="center", fontsize=5.5, color="w" if dark else "k")
                if target_s is not None and r["meets_target"]:
                    ax.add_patch(plt.Rectangle((j - 0.47, i - 0.47), 0.94, 0.94, fill=False, ec="red", lw=1.2))
                if best is not None and (best["devices"], best["bandwidth_Bps"], best["gdr"]) == (d, bw, g):
                    ax.plot(j + 0.34, i + 0.28, marker="*", color="red", ms=8)
    cb = fig.colorbar(im, ax=list(axes[0]), label=f"{schedule} epoch time", shrink=0.9)
    lo, hi = np.floor(np.log10(norm.vmin)), np.ceil(np.log10(norm.vmax))
    nice = [m * 10.0**k for k in np.arange(lo, hi + 1) for m in (1, 2, 5)]
    cb.set_ticks([t for t in nice if norm.vmin <= t <= norm.vmax] or [norm.vmin, norm.vmax])
    cb.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _fmt_s(v)))
    cb.ax.minorticks_off()
    sub = "" if target_s is None else f"\nred: meets the {_fmt_s(target_s)} target; ★ cheapest such point"
    fig.suptitle(f"{title}\n{schedule} epoch time and speedup over vanilla{sub}", fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def lines_plot(path: Path, rows: list[dict], title: str, gdr: str, target_s: float | None = None) -> Path:
    """Epoch time against devices, one line per schedule, one panel per bandwidth (GDR ``gdr``)."""
    plt = _plt()
    mine = [r for r in rows if r["gdr"] == gdr]
    bws = sorted({(r["bandwidth_Bps"], r["bandwidth"]) for r in mine})
    scheds = list(dict.fromkeys(r["schedule"] for r in mine))
    devs = sorted({r["devices"] for r in mine})
    cols = min(3, len(bws))
    nrow = -(-len(bws) // cols)
    fig, axes = plt.subplots(nrow, cols, figsize=(3.2 * cols, 2.6 * nrow), squeeze=False, sharey=True)
    for k, (bw, label) in enumerate(bws):
        ax = axes[k // cols][k % cols]
        for i, s in enumerate(scheds):
            pts = sorted((r["devices"], r["epoch_time_s"]) for r in mine if r["bandwidth_Bps"] == bw and r["schedule"] == s)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="os^v"[i % 4], ms=3.5 - 0.5 * (i % 4),
                    ls=("-", "--", "-.", ":")[i % 4], lw=1.1, label=s)
        if target_s is not None:
            ax.axhline(target_s, color="red", ls="--", lw=0.8, label="target")
        ax.set_xscale("log", base=2)
        ax.set_xticks(devs, [str(d) for d in devs])
        ax.minorticks_off()
        ax.set_yscale("log")
        ax.set_title(f"{label} per node", fontsize=8)
        ax.set_xlabel("devices", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, which="both", lw=0.3, alpha=0.5)
    for k in range(len(bws), nrow * cols):
        axes[k // cols][k % cols].axis("off")
    for row in axes:
        row[0].set_ylabel("epoch time (s)", fontsize=8)
    axes[0][0].legend(fontsize=6)
    fig.suptitle(f"{title} (GPUDirect RDMA {gdr})", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
