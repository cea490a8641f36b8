"""The durations of a GAT layer's work, op for op as :mod:`adaqp.runtime.attention_halo` runs it.

:func:`adaqp.costmodel.program.build_program` places them where the runtime runs them: the
inner rows' projection, logits and central attention under the forward exchange, the halo rows'
projection and the marginal attention after it; backward the marginal part before the
gradient exchange and the central/inner part under it. Every duration comes from
:mod:`adaqp.costmodel.durations`; the mapping of the runtime's tensor ops onto its op models is:

- ``W x`` (``nn.Linear``): ``gemm`` of ``rows x in -> heads x head_dim``;
- a logit vector ``(W x * a).sum(-1)``: two passes over ``rows x heads*head_dim`` (the product,
  then the reduction that reads it), each an element-wise ``relu``-priced pass;
- the edge softmax over a block of ``E`` edges (self loops included) into ``rows`` rows: six
  gather/scatter passes of width ``heads`` (two gathers of the logits, the row maximum's
  scatter and gather, the denominator's scatter and gather), priced as ``spmm`` over ``E``
  non-zeros of that width, and five element-wise passes over ``E x heads`` (add, LeakyReLU,
  shift, exp, divide), plus the attention dropout when it is on;
- the weighted aggregation: a gather of ``W h`` per edge, its product with the coefficients
  (one element-wise pass over ``E x heads*head_dim``) and a scatter-add into the rows, priced
  as one ``spmm`` over ``E`` non-zeros of width ``heads*head_dim``;
- concatenations: one ``copy`` pass over the result.

Backward prices each forward pass once more with the backward op models; the aggregation's
backward has two products (the coefficients' gradient gathers the output gradient per edge,
the sources' gradient scatters it), so it counts two ``spmm`` and one element-wise pass.
"""

from __future__ import annotations

from adaqp.costmodel import durations as D
from adaqp.costmodel.profile import HardwareProfile


class GATOps:
    """Durations (``[P]`` arrays) of the parts of GAT layer ``layer`` on every rank."""

    def __init__(self, p: HardwareProfile, stats, shape) -> None:
        self.p, self.s, self.shape = p, stats, shape
        self.nnz_central = stats.nnz_central + stats.central  # + one self loop per row
        self.nnz_marginal = stats.nnz_marginal + stats.marginal

    def _pass(self, rows, width):
        return D.elementwise_s(self.p, "relu", rows=rows, width=width)

    def _logits(self, rows, heads, head_dim, vectors: int):
        return vectors * 2 * self._pass(rows, heads * head_dim)

    def _attention(self, rows, nnz, heads, head_dim, backward: bool):
        p, hc = self.p, heads * head_dim
        softmax = 6 * D.spmm_s(p, rows, nnz, heads, backward) + 5 * self._pass(nnz, heads)
        if self.shape.attn_dropout:
            softmax = softmax + D.elementwise_s(p, "dropout", rows=nnz, width=heads)
        products = 2 if backward else 1
        return softmax + products * D.spmm_s(p, rows, nnz, hc, backward) + self._pass(nnz, hc)

    def central(self, layer: int, backward: bool = False):
        """Inner rows: projection, both logit vectors, the central block's attention."""
        w, (h, c) = self.shape.widths[layer], self.shape.gat_heads(layer)
        s = self.s
        return (D.gemm_s(self.p, s.inner, w, h * c, backward) + self._logits(s.inner, h, c, 2)
                + self._attention(s.central, self.nnz_central, h, c, backward))

    def marginal(self, layer: int, backward: bool = False):
        """Halo rows: projection and their neighbour logits; [inner; halo] concatenated (rows and
        logits), the marginal block's attention, and the concatenation [central; marginal]."""
        w, (h, c) = self.shape.widths[layer], self.shape.gat_heads(layer)
        s, local = self.s, self.s.inner + self.s.halo
        t = (D.gemm_s(self.p, s.halo, w, h * c, backward) + self._logits(s.halo, h, c, 1)
             + self._attention(s.marginal, self.nnz_marginal, h, c, backward))
        if backward:  # the concatenations' gradients are slices (views): no pass
            return t
        copy = lambda rows, width: D.elementwise_s(self.p, "copy", rows=rows, width=width)  # noqa: E731
        return t + copy(local, h * c) + copy(local, h) + copy(s.inner, h * c)

    def output(self, layer: int):
        """Heads concatenated (a view) or averaged (one pass), then the bias (one pass)."""
        h, c = self.shape.gat_heads(layer)
        mean = self._pass(self.s.inner, h * c) if layer == self.shape.layers - 1 else 0.0
        width = c if layer == self.shape.layers - 1 else h * c
        return mean + self._pass(self.s.inner, width)


def gat_num_params(widths, heads: int, out_heads: int) -> int:
    """Weights, both attention vectors and the bias of every GAT layer (no norm layers)."""
    n, layers = 0, len(widths) - 1
    for i in range(layers):
        last = i == layers - 1
        h = out_heads if last else heads
        c = widths[i + 1] if last else widths[i + 1] // heads
        n += widths[i] * h * c + 2 * h * c + (c if last else h * c)
    return n
