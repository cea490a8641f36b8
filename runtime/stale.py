"""PipeGCN-style staleness (Wan et al. 2022): every layer aggregates over the previous epoch's
halo rows and adds the previous epoch's halo gradients, so an exchange runs under the compute
of the next epoch instead of blocking this one.

At every layer of epoch ``t >= 1``:

- forward: wait for the exchange of this layer's input rows launched at epoch ``t - 1``, launch
  this epoch's (not waited for until epoch ``t + 1``), and aggregate over the received rows;
- backward: compute the gradients of the halo rows, wait for the ones the peers computed at
  epoch ``t - 1``, launch this epoch's, and add the received ones into the rows this rank sent.

Epoch 0 has no previous epoch: it exchanges fresh rows and gradients and waits for them, as the
``overlap`` schedule does (the first epoch equals a non-stale one), and what it received also
stands as the stale values of epoch 1. So epoch ``t >= 1`` uses exactly epoch ``t - 1``'s values.
The reference implementation instead starts from zero-filled buffers at epoch 0
(docs/schedules.md).

:class:`StaleHalo` keeps, per (layer, direction), the last exchange: in flight (a Pending) or
decoded (a tensor). Checkpoints decode every exchange in flight and save the tensors, so that a
resumed run continues with the same stale values.
"""

from __future__ import annotations

import torch

from adaqp.runtime.aggregate import aggregate_marginal, backward_fresh, forward_fresh, local_grad, spmm

Key = tuple[int, str]  # (layer, "fwd" | "bwd")


class StaleHalo:
    def __init__(self, exchanger, device: torch.device) -> None:
        self.ex, self.device = exchanger, device
        self._ready: dict[Key, torch.Tensor] = {}
        self._pending: dict[Key, object] = {}

    def has(self, key: Key) -> bool:
        return key in self._ready or key in self._pending

    def take(self, key: Key) -> torch.Tensor:
        """The previous epoch's values of ``key``, waiting for its exchange if still in flight."""
        if key in self._pending:
            self._ready[key] = self.ex.finish(self._pending.pop(key))
        return self._ready.pop(key)

    def put(self, key: Key, values: torch.Tensor) -> None:
        self._ready[key] = values

    def launch(self, key: Key, rows: torch.Tensor) -> None:
        # the previous exchange of ``key`` must be taken first: both use the channel's buffers
        assert not self.has(key), f"stale exchange {key} launched before the last one was taken"
        self._pending[key] = self.ex.start(key[0], key[1], rows, async_op=True)

    def settle(self) -> None:
        """Wait for and decode every exchange in flight (checkpoints, the end of training: the
        buffers of a message must outlive it)."""
        for key in list(self._pending):
            self._ready[key] = self.ex.finish(self._pending.pop(key))

    def state(self) -> dict[str, torch.Tensor]:
        """The stale values as ``{"<layer>.<direction>": tensor}`` (checkpoints hold plain data)."""
        self.settle()
        return {f"{layer}.{d}": t.detach().cpu().clone() for (layer, d), t in sorted(self._ready.items())}

    def restore(self, state: dict) -> None:
        self._pending.clear()
        self._ready = {}
        for name, t in state.items():
            layer, d = name.split(".")
            self._ready[(int(layer), d)] = t.to(self.device)


class StaleAggregate(torch.autograd.Function):
    """``z = A_local [h; halo]`` with ``halo`` the previous epoch's rows (see the module doc)."""

    @staticmethod
    def forward(ctx, h, layer: int, ctxobj, g):
        ctx.layer, ctx.ctxobj, ctx.g = layer, ctxobj, g
        st, key = ctxobj.stale, (layer, "fwd")
        if not st.has(key):  # epoch 0: fresh rows, which also serve as epoch 1's stale ones
            z, halo = forward_fresh(h, layer, ctxobj, g)
            st.put(key, halo)
            return z
        halo = st.take(key)
        st.launch(key, h.detach())
        with ctxobj.timer.phase("central"):
            z_c = spmm(g.central, h)
        return aggregate_marginal(g, h, halo, z_c, ctxobj.timer)

    @staticmethod
    def backward(ctx, dz):
        g, ctxobj, layer = ctx.g, ctx.ctxobj, ctx.layer
        st, key = ctxobj.stale, (layer, "bwd")
        if layer == 0 or not st.has(key):  # no halo gradients at the input layer; epoch 0: fresh
            d, back = backward_fresh(dz, layer, ctxobj, g)
            if back is not None:
                st.put(key, back)
            return d, None, None, None
        dz = dz.contiguous()
        timer, ex = ctxobj.timer, ctxobj.exchanger
        with timer.phase("marginal"):
            d_halo = spmm(g.marginal_halo_t, dz[g.num_central:])
        back = st.take(key)
        st.launch(key, d_halo)
        d = local_grad(g, dz, timer)
        with timer.phase("marginal"):
            d = d.index_add(0, ex.send_index, back)
        return d, None, None, None
