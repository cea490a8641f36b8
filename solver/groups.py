"""Rows of every channel grouped for the bit-width MILP.

A *channel* is (layer, direction, sender, receiver) as in :mod:`adaqp.plans`. Its rows are sorted by
variance weight ``score^2 * range^2`` (heaviest first) and cut into groups of ``size`` consecutive
rows of that order; the solver picks one width per group. ``size`` is chosen once for the whole plan
so that the total number of groups stays near ``max_groups`` (the MILP has ``groups x widths``
binaries): ``size = max(min_rows, ceil(total_rows / max_groups))``, capped by ``max_rows``.

Per group we keep its variance coefficient ``V`` = sum over rows of ``score^2 * F * range^2 / 6``,
i.e. :func:`adaqp.quant.variance_reference` at one bit (``2^1 - 1 = 1``), so the variance at ``b``
bits is ``V * level_factor(b)`` with ``level_factor(b) = 1 / (2^b - 1)^2`` (0 for pass-through).

Row ranges (max - min of a message row): traced ones (``HaloExchanger.row_ranges``: key
``(layer, dir, sender, receiver)`` -> one value per row in send order) win. Without them (before
training) layer 0 forward uses the input features' per-row range, and every other channel uses
``default_range`` (1.0): hidden activations after LayerNorm+ReLU and their gradients have no
a-priori scale, so only the aggregation scores then distinguish rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from adaqp import quant
from adaqp.errors import require
from adaqp.plans import expected_channels
from adaqp.wire import check_bits, row_nbytes

DEFAULT_MAX_GROUPS = 4000


@dataclass(frozen=True)
class Groups:
    """Flat arrays over groups ``g``; ``channels[channel[g]]`` is the group's channel key."""

    num_layers: int
    pair_rows: np.ndarray  # [P, P] forward rows (the BitPlan needs it back)
    widths: tuple[int, ...]  # feature width of each layer's messages
    channels: list  # channel keys (layer, dir, s, r), canonical order
    channel: np.ndarray  # [G] index into channels
    rows: list  # [G] int64 arrays: row indices within the channel (send order)
    V: np.ndarray  # [G] variance coefficient (variance at 1 bit)
    size: int  # target rows per group used

    @property
    def num_groups(self) -> int:
        return int(self.V.shape[0])

    @property
    def counts(self) -> np.ndarray:
        return np.array([r.size for r in self.rows], dtype=np.int64)

    def key(self, g: int) -> tuple:
        return self.channels[int(self.channel[g])]

    def attr(self, i: int) -> np.ndarray:
        """[G] one field of the groups' channel keys (0 layer, 2 sender, 3 receiver)."""
        return np.array([c[i] for c in self.channels], dtype=np.int64)[self.channel] if self.channels \
            else np.zeros(0, dtype=np.int64)

    def nbytes(self, bits_set) -> np.ndarray:
        """[G, nb] bytes on the wire of each group at each width (``wire.row_nbytes``)."""
        w = np.array([self.widths[c[0]] for c in self.channels], dtype=np.int64)[self.channel]
        per_row = np.array([[row_nbytes(int(f), b) for b in bits_set] for f in w], dtype=np.float64)
        return per_row.reshape(-1, len(bits_set)) * self.counts[:, None]

    def to_groups_spec(self, choice_bits: np.ndarray) -> dict:
        """``BitPlan.from_groups`` input: per channel ``[(row indices, bits), ...]``."""
        spec: dict = {}
        for g in range(self.num_groups):
            spec.setdefault(self.key(g), []).append((self.rows[g], int(choice_bits[g])))
        return spec


def level_factor(bits_set) -> np.ndarray:
    """Variance at each width relative to one bit: ``1/(2^b-1)^2`` (0 for 16/32)."""
    return np.array([float(quant.variance_reference(1.0, 1, check_bits(b)) / quant.variance_reference(1.0, 1, 1))
                     for b in bits_set])


def feature_ranges(features: np.ndarray, halo_plan) -> dict:
    """Layer-0 forward row ranges from the input features: ``{(0, 'fwd', s, r): [rows]}``."""
    x = np.asarray(features, dtype=np.float64)
    rng = x.max(1) - x.min(1) if x.shape[1] else np.zeros(x.shape[0])
    out = {}
    for rh in halo_plan.ranks:
        for r in range(rh.num_parts):
            ids = rh.send_global(r)
            if ids.size:
                out[(0, "fwd", rh.rank, r)] = rng[ids]
    return out


def channel_scores(halo_plan, model: str) -> dict:
    """Aggregation score per row of each forward pair ``(s, r)``, in send order.

    A backward channel carries the gradients of the same rows (the transposed aggregation uses the
    same edge weights), so it reuses its forward twin's scores.

    GAT weighs a row by its attention coefficients, which are data-dependent (they move with the
    weights every step), non-negative and sum to one over each node's in-neighbours. No plan made
    before training can know them, so GAT takes the mean-aggregation (SAGE) weight ``1/deg``:
    their value under uniform attention. (With GAT's self loop uniform attention is
    ``1/(deg+1)``; the halo plan stores ``1/deg``, which is ``(deg+1)/deg`` times that: at most
    2x, for edges into degree-1 nodes, and within 10 % from degree 10 up.)"""
    require(model in ("gcn", "sage", "gat"), f"model must be gcn, sage or gat, got {model!r}")
    field = "send_score_gcn" if model == "gcn" else "send_score_sage"  # sage and gat: 1/deg
    out = {}
    for rh in halo_plan.ranks:
        score = np.asarray(getattr(rh, field), dtype=np.float64)
        for r in range(rh.num_parts):
            a, b = int(rh.send_ptr[r]), int(rh.send_ptr[r + 1])
            if b > a:
                out[(rh.rank, r)] = score[a:b]
    return out


def _as_array(v, n: int, key) -> np.ndarray:
    a = np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v, dtype=np.float64).ravel()
    require(a.size == n, f"row ranges for {key}: {a.size} values but the channel has {n} rows")
    return np.nan_to_num(np.abs(a), nan=0.0, posinf=0.0)


def group_size(total_rows: int, max_groups: int, min_rows: int = 1, max_rows: int | None = None) -> int:
    size = max(int(min_rows), math.ceil(total_rows / max(1, int(max_groups))), 1)
    return min(size, int(max_rows)) if max_rows else size


def build_groups(halo_plan, widths, model: str = "gcn", ranges: dict | None = None,
                 features: np.ndarray | None = None, default_range: float = 1.0,
                 max_groups: int = DEFAULT_MAX_GROUPS, min_rows: int = 1,
                 max_rows: int | None = None) -> Groups:
    """Group every channel of ``halo_plan`` for a model whose layer ``l`` sends ``widths[l]``
    features. ``ranges``: traced row ranges (win over the ``features`` estimate)."""
    widths = tuple(int(w) for w in widths)
    pr = halo_plan.pair_rows()
    chans = expected_channels(pr, len(widths))
    known = dict(feature_ranges(features, halo_plan)) if features is not None else {}
    known.update(ranges or {})
    scores = channel_scores(halo_plan, model)
    size = group_size(sum(chans.values()), max_groups, min_rows, max_rows)
    keys, chan_idx, rows, V = list(chans), [], [], []
    for c, (layer, d, s, r) in enumerate(keys):
        n = chans[(layer, d, s, r)]
        score = scores[(s, r) if d == "fwd" else (r, s)]
        rng = _as_array(known[(layer, d, s, r)], n, (layer, d, s, r)) if (layer, d, s, r) in known \
            else np.full(n, float(default_range))
        coef = score * score * quant.variance_reference(rng, widths[layer], 1)  # variance at 1 bit
        order = np.argsort(-coef, kind="stable")  # heaviest first: similar rows share a group
        for a in range(0, n, size):
            idx = order[a:a + size]
            chan_idx.append(c)
            rows.append(np.sort(idx))
            V.append(float(coef[idx].sum()))
    return Groups(len(widths), pr, widths, keys, np.array(chan_idx, dtype=np.int64), rows,
                  np.array(V, dtype=np.float64), size)
