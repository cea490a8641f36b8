"""Plots the core commands write (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plt_module():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def degree_plot(path: Path, graph) -> Path:
    """In-degree distribution on log-log axes: power-law graphs show a straight tail."""
    plt = plt_module()
    counts = np.bincount(graph.in_degree)
    d = np.nonzero(counts)[0]
    d = d[d > 0]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.loglog(d, counts[d], ".", ms=4)
    ax.set_xlabel("in-degree")
    ax.set_ylabel("nodes")
    ax.set_title(f"{graph.name}: {graph.num_nodes:,} nodes, {graph.num_edges:,} edges", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def halo_heatmap(path: Path, pair_rows: np.ndarray, title: str) -> Path:
    """Rows sent from each part (y) to each part (x): the communication the halo implies."""
    plt = plt_module()
    p = pair_rows.shape[0]
    fig, ax = plt.subplots(figsize=(1.2 + 0.45 * p, 0.9 + 0.4 * p))
    im = ax.imshow(pair_rows, cmap="viridis")
    ax.set_xlabel("receiver part")
    ax.set_ylabel("sender part")
    ax.set_xticks(range(p))
    ax.set_yticks(range(p))
    if p <= 12:
        for s in range(p):
            for r in range(p):
                ax.text(r, s, f"{pair_rows[s, r]:,}", ha="center", va="center", fontsize=6,
                        color="w" if pair_rows[s, r] < pair_rows.max() / 2 else "k")
    fig.colorbar(im, ax=ax, label="halo rows")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
