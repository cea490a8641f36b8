"""The GNN model (GCN, GraphSAGE or GAT stacks) and the loss, independent of where it runs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from adaqp.errors import require
from adaqp.runtime.layers import LAYERS


@dataclass(frozen=True)
class ModelConfig:
    model: str = "gcn"
    layers: int = 3
    hidden: int = 256
    dropout: float = 0.5
    layer_norm: bool = True
    heads: int | None = None  # GAT: attention heads of the hidden layers (None: 8); others: 1
    out_heads: int | None = None  # GAT: heads of the last layer, averaged (None: 1); others: 1
    attn_dropout: float = 0.0  # GAT: dropout on the attention coefficients

    def __post_init__(self) -> None:
        require(self.model in LAYERS, f"unknown model {self.model!r}; choose from {', '.join(LAYERS)}")
        require(self.layers >= 1, f"layers must be >= 1, got {self.layers}")
        require(self.hidden >= 1, f"hidden must be >= 1, got {self.hidden}")
        require(0.0 <= self.dropout < 1.0, f"dropout must lie in [0, 1), got {self.dropout}")
        require(0.0 <= self.attn_dropout < 1.0, f"attn_dropout must lie in [0, 1), got {self.attn_dropout}")
        if self.model == "gat":
            heads = 8 if self.heads is None else self.heads
            out_heads = 1 if self.out_heads is None else self.out_heads
            require(heads >= 1 and out_heads >= 1, f"heads must be >= 1, got {heads} and {out_heads}")
        else:  # one "head": the hidden width is the message width
            require(self.heads in (None, 1) and self.out_heads in (None, 1) and self.attn_dropout == 0.0,
                    f"heads, out_heads and attn_dropout apply to gat only, not {self.model}")
            heads, out_heads = 1, 1
        object.__setattr__(self, "heads", int(heads))  # resolved, so saved configs state them
        object.__setattr__(self, "out_heads", int(out_heads))

    def widths(self, in_dim: int, out_dim: int) -> list[int]:
        """Input width of every layer (= the width of that layer's halo messages), then the output.
        A GAT hidden layer concatenates its heads: its output is ``heads x hidden`` wide."""
        return [in_dim] + [self.heads * self.hidden] * (self.layers - 1) + [out_dim]


class GNN(nn.Module):
    def __init__(self, cfg: ModelConfig, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.widths(in_dim, out_dim)
        self.layers = nn.ModuleList(_layer(cfg, w[i], w[i + 1], last=i == cfg.layers - 1)
                                    for i in range(cfg.layers))
        self.norms = nn.ModuleList(nn.LayerNorm(w[i + 1]) if cfg.layer_norm else nn.Identity()
                                   for i in range(cfg.layers - 1))
        # GAT uses ELU between layers, as in its paper (Velickovic et al. 2018); GCN/SAGE ReLU
        self.act = F.elu if cfg.model == "gat" else F.relu

    def forward(self, x: torch.Tensor, aggregate) -> torch.Tensor:
        """``aggregate(layer, h, norm)`` aggregates neighbours (distributed or full-graph); an
        attention layer gets the site of its layer instead (:func:`attention.attention_site`)."""
        from adaqp.runtime.attention import attention_site

        h = x
        for i, layer in enumerate(self.layers):
            h = dropout(h, self.cfg.dropout, self.training)
            if getattr(layer, "attention", False):
                h = layer(h, attention_site(aggregate, i))
            else:
                h = layer(h, lambda hh, norm, i=i: aggregate(i, hh, norm))
            if i < len(self.layers) - 1:
                h = self.act(self.norms[i](h))
        return h


def _layer(cfg: ModelConfig, in_dim: int, out_dim: int, last: bool) -> nn.Module:
    cls = LAYERS[cfg.model]
    if hasattr(cls, "from_config"):  # a layer with options beyond its widths (GAT's heads)
        return cls.from_config(cfg, in_dim, out_dim, last)
    return cls(in_dim, out_dim)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout. Same distribution as ``F.dropout``, but when ``256 p`` is a whole number
    (p = 0.5, 0.25, ...) the mask comes from random bytes: CPU ``bernoulli_`` took ~40 ms for
    Cora's 2708 x 1433 input, random bytes ~7 ms."""
    if not training or p == 0.0:
        return x
    k = p * 256
    if k == int(k):
        keep = (torch.randint(0, 256, x.shape, dtype=torch.uint8, device=x.device) >= int(k)).to(x.dtype)
    else:
        keep = torch.rand(x.shape, dtype=x.dtype, device=x.device).ge_(p)  # 1.0 where kept
    # one float mask, scaled in place: x * bool_mask * scale took ~3x longer (two passes over x,
    # the first converting the mask's type)
    return x * keep.mul_(1.0 / (1.0 - p))


def loss_sum(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum of per-node losses over ``mask`` (callers divide by the *global* count, so that
    summing gradients over ranks gives exactly the single-process gradient)."""
    if labels.dim() == 2:  # multi-label: mean over classes of the sigmoid loss, per node
        return F.binary_cross_entropy_with_logits(logits[mask], labels[mask], reduction="sum") / labels.shape[1]
    return F.cross_entropy(logits[mask], labels[mask], reduction="sum")


def correct_counts(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """(hits, total): accuracy for single-label, micro-F1 parts for multi-label (2TP, 2TP+FP+FN)."""
    if labels.dim() == 2:
        pred = (logits[mask] > 0).float()
        y = labels[mask]
        tp = (pred * y).sum().item()
        return 2 * tp, (pred.sum() + y.sum()).item()
    pred = logits[mask].argmax(1)
    return float((pred == labels[mask]).sum().item()), float(mask.sum().item())
