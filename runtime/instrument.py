"""Timing the dense transforms (GEMMs) forward *and* backward without touching the layers.

Forward: a pre/post hook pair around every ``nn.Linear``. Backward: tensor hooks — the gradient
reaching the Linear's output marks the start of its backward, the gradients of its input (or,
at the input layer, of its weight) mark the end. Hooks only read the clock: no synchronisation.
"""

from __future__ import annotations

import time

import torch
from torch import nn


def instrument_dense(model: nn.Module, timer) -> list:
    """Record "dense" spans on ``timer`` for every Linear of ``model``; returns the hook handles."""
    handles = []
    for mod in model.modules():
        if isinstance(mod, nn.Linear):
            handles.append(mod.register_forward_pre_hook(_pre))
            handles.append(mod.register_forward_hook(lambda m, i, o, t=timer: _post(m, i, o, t)))
    return handles


def _pre(mod, inputs) -> None:
    mod._adaqp_t0 = time.perf_counter_ns()


def _post(mod, inputs, output, timer) -> None:
    timer.add("dense", "main", mod._adaqp_t0, time.perf_counter_ns())
    if not (torch.is_grad_enabled() and output.requires_grad):
        return
    state = {}

    def start(grad):
        state["t0"] = time.perf_counter_ns()

    def end(grad):
        if "t0" in state:  # input and weight gradients both end it: record the later one once
            state["t1"] = time.perf_counter_ns()
            if state.get("done") is None:
                state["done"] = True
                timer.add("dense", "main", state["t0"], state["t1"])

    output.register_hook(start)
    x = inputs[0]
    (x if x.requires_grad else mod.weight).register_hook(end)
