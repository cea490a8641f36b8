"""From a HaloPlan and a time budget to a BitPlan: the solver's entry point.

``solve_bitplan`` groups the rows, builds the linear cost model, solves, and returns the BitPlan
(``BitPlan.from_groups``) that the simulator, the analytic model and the runtime read unchanged.

Budgets (:func:`parse_budget`):
- ``"1.2s"`` / ``"800ms"``: the predicted *epoch* time (``analytic.estimate`` with the BitPlan);
- ``"0.4x"``: the exchange part of the epoch — the sum over exchanges of exchange time + slowest
  encode + slowest decode — as a fraction of the fp32 exchange time (sum of ``exchange_s`` of the
  fp32 byte matrices; coding counts against the quantized side only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from adaqp.costmodel.network import exchange_s
from adaqp.costmodel.workload import exchanges
from adaqp.solver.bnb import solve_and_certify
from adaqp.solver.groups import DEFAULT_MAX_GROUPS, build_groups
from adaqp.solver.milp import Solution, has_highspy, solve
from adaqp.solver.model import build_model

from adaqp.errors import require
from adaqp.plans import BitPlan


@dataclass(frozen=True)
class Budget:
    value: float
    unit: str  # "s" (epoch seconds) or "x" (fraction of the fp32 exchange time)

    @property
    def scope(self) -> str:
        return "epoch" if self.unit == "s" else "exchange"


def parse_budget(text: str) -> Budget:
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*(s|ms|x)\s*", str(text))
    require(m is not None, f"time budget {text!r}: expected e.g. 1.2s, 800ms or 0.4x")
    v, unit = float(m.group(1)), m.group(2)
    require(v > 0, f"time budget {text!r} must be positive")
    return Budget(v / 1e3, "s") if unit == "ms" else Budget(v, unit)


def fp32_exchange_s(stats, widths, cluster, profile) -> float:
    """Sum over the epoch's exchanges of their analytic duration with fp32 messages."""
    return float(sum(exchange_s(cluster, profile, e.nbytes)[0] for e in exchanges(stats, list(widths), 32)))


@dataclass
class PlanResult:
    bitplan: BitPlan
    solution: Solution
    budget_s: float | None  # the budget in the model's seconds
    scope: str
    num_groups: int


def solve_bitplan(halo_plan, stats, shape, cluster, profile, budget: str | Budget | None,
                  bits_set=(2, 4, 8), schedule: str = "adaqp", mode: str = "min-variance",
                  solver: str = "cbc", time_limit: float = 30.0, gap: float = 1e-3, lam: float = 0.5,
                  features=None, ranges=None, max_groups: int = DEFAULT_MAX_GROUPS,
                  min_rows: int = 1, max_rows: int | None = None, fixed_costs: str = "exact",
                  certify_s: float = 0.0, on_batch=None) -> PlanResult:
    """Solve the bit-widths of every channel of ``halo_plan`` (see the module doc for budgets).
    ``certify_s`` > 0 (``min-variance``): also run the branch and bound for that long, beside the
    first solve (:func:`bnb.solve_and_certify`), which proves a lower bound for the whole problem
    (and may find a better plan); ``on_batch`` follows it (:func:`bnb.branch_and_bound`)."""
    bits_set = tuple(sorted({int(b) for b in bits_set}))
    require(bool(bits_set), "bits_set is empty: give at least one width to choose from, e.g. (2, 4, 8)")
    b = parse_budget(budget) if isinstance(budget, str) else budget
    require(b is not None or mode == "lambda", f"mode {mode} needs a time budget")
    require(certify_s <= 0 or has_highspy(), "--certify needs HiGHS's Python package: pip install highspy")
    widths = shape.widths[:-1]
    groups = build_groups(halo_plan, widths, shape.model, ranges=ranges, features=features,
                          max_groups=max_groups, min_rows=min_rows, max_rows=max_rows)
    scope = b.scope if b is not None else "epoch"
    model = build_model(groups, bits_set, stats, shape, schedule, cluster, profile, scope)
    seconds = None
    if b is not None:
        seconds = b.value if b.unit == "s" else b.value * fp32_exchange_s(stats, widths, cluster, profile)
    def first():
        return solve(model, seconds, mode, solver, time_limit, gap, lam, fixed_costs)

    if certify_s > 0 and mode == "min-variance" and groups.num_groups:  # the search beside the first solve
        sol = solve_and_certify(model, first, seconds, gap, certify_s, on_batch=on_batch)
    else:
        sol = first()
    plan = BitPlan.from_groups(stats.pair_rows, shape.layers, groups.to_groups_spec(sol.bits),
                               default_bits=bits_set[-1])
    return PlanResult(plan, sol, seconds, scope, groups.num_groups)


def frontier(halo_plan, stats, shape, cluster, profile, points: int = 8, scope: str = "epoch",
             **kw) -> list[dict]:
    """Variance against time: min-variance plans for budgets spread between the narrowest and the
    widest uniform plans' times (``scope`` epoch: seconds; exchange: the same as a fraction)."""
    bits_set = tuple(sorted({int(b) for b in kw.pop("bits_set", (2, 4, 8))}))
    groups = build_groups(halo_plan, shape.widths[:-1], shape.model, features=kw.pop("features", None),
                          ranges=kw.pop("ranges", None), max_groups=kw.pop("max_groups", DEFAULT_MAX_GROUPS))
    model = build_model(groups, bits_set, stats, shape, kw.pop("schedule", "adaqp"), cluster, profile, scope)
    G = groups.num_groups
    lo = min(model.time(np.full(G, j)) for j in range(len(bits_set)))
    hi = model.time(np.full(G, len(bits_set) - 1))
    rows = []
    for budget in np.linspace(lo * (1 + 1e-6), hi * (1 + 1e-6), max(2, points)):
        sol = solve(model, float(budget), "min-variance", **kw)
        rows.append({"budget_s": float(budget), "time_s": sol.time_s, "variance": sol.variance,
                     "gap": sol.gap, "solve_time_s": sol.solve_time_s})
    return rows
