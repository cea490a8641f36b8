"""``PlanStats`` from partition statistics alone, for graphs too large to build (or to partition).

Assumptions (each a simplification a real METIS partition violates somewhat):

- **Balanced parts**: every part owns ``num_nodes / parts`` nodes (the remainder spread one each)
  and the in-edges of its nodes, ``num_edges`` in proportion.
- **Cut edges uniform over ordered pairs**: ``edge_cut_frac * num_edges`` edges have their source
  in another part, spread evenly over the ``P (P - 1)`` ordered pairs — or, with ``jitter > 0``,
  with a log-normal spread of that sigma (seeded; the total kept), for a less regular traffic matrix.
- **Halo rows by a distinct-source estimate**: the ``e`` cut edges from part s into part r have
  their sources drawn uniformly from the ``n_s`` nodes of s, so s sends r the expected number of
  distinct sources, ``n_s (1 - exp(-e / n_s))`` rows.
- **Marginal nodes** likewise: a node of r is marginal when at least one of the cut edges into r
  lands on it (``n_r (1 - exp(-cut_in / n_r))``); local edges spread evenly over r's nodes, so
  marginal nodes get their share of local edges plus every cut edge.

Edge counts are directed edges as aggregated (a symmetric graph counts each undirected edge twice).
"""

from __future__ import annotations

import numpy as np

from adaqp.costmodel.workload import PlanStats
from adaqp.errors import require


def synthetic_stats(num_nodes: int, num_edges: int, parts: int, edge_cut_frac: float, *,
                    jitter: float = 0.0, seed: int = 0) -> PlanStats:
    """Per-rank sizes of a ``parts``-way partition of a graph known only by its counts."""
    require(parts >= 1 and num_nodes >= parts, f"need 1 <= parts <= num_nodes, got {parts} parts "
                                               f"of {num_nodes} nodes")
    require(num_edges >= 0, f"num_edges must be >= 0, got {num_edges}")
    require(0.0 <= edge_cut_frac <= 1.0, f"edge_cut_frac must be in [0, 1], got {edge_cut_frac}")
    require(jitter >= 0.0, f"jitter must be >= 0, got {jitter}")
    P = parts
    inner = np.full(P, num_nodes // P, np.int64) + (np.arange(P) < num_nodes % P)
    cut = _cut_edges(num_edges * edge_cut_frac if P > 1 else 0.0, P, jitter, seed)
    pair_rows = np.rint(inner[:, None] * -np.expm1(-cut / inner[:, None])).astype(np.int64)
    cut_in = cut.sum(0)
    local_in = num_edges * (1.0 - (edge_cut_frac if P > 1 else 0.0)) * inner / num_nodes
    marginal = np.minimum(np.rint(inner * -np.expm1(-cut_in / inner)).astype(np.int64), inner)
    central = inner - marginal
    share = marginal / inner  # of r's nodes, and so of its local edges
    as_int = lambda x: np.rint(x).astype(np.int64)  # noqa: E731
    return PlanStats(inner=inner, central=central, marginal=marginal, halo=pair_rows.sum(0),
                     nnz_central=as_int(local_in * (1 - share)),
                     nnz_marginal=as_int(cut_in + local_in * share),
                     nnz_marginal_halo=as_int(cut_in), pair_rows=pair_rows)


def _cut_edges(total: float, P: int, jitter: float, seed: int) -> np.ndarray:
    """[P, P] expected cut edges from s into r (zero diagonal), summing to ``total``."""
    w = np.ones((P, P))
    if jitter > 0:
        w = np.random.default_rng(seed).lognormal(0.0, jitter, size=(P, P))
    np.fill_diagonal(w, 0.0)
    return w * (total / w.sum()) if w.sum() > 0 else w
