"""The critical path: from the rank that finished last, back through the spans that gated it.

Every node the engine records names its *gate* — the node whose end let it start: the rank's own
previous step, a neighbour's kernel that held the shared device, the flow that arrived last at an
exchange (itself gated by its sender's arrival), or the last rank into the all-reduce barrier.
Following gates from the last node to the epoch start gives a chain of spans that tile
``[0, epoch]`` with no gap: nothing on it could have finished earlier without the end moving.

Attribution: each node owns the time from its gate's end to its own end. A flow's time overlapped
by its rank's hidden compute is credited to that compute (``central``), the rest is exposed
communication — the analytic model's convention (``max(x, hidden) - hidden``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from adaqp.simulator.engine import Node


@dataclass(frozen=True)
class PathSegment:
    start_s: float
    end_s: float
    kind: str  # compute | exchange | allreduce
    where: str  # compute: the resource; exchange: "L1 fwd 3->5 via nic_in[1]"
    phases_s: dict = field(default_factory=dict)  # what the segment's time was spent on

    def line(self) -> str:
        top = sorted(self.phases_s.items(), key=lambda kv: -kv[1])[:4]
        detail = ", ".join(f"{k} {v * 1e3:.3f}" for k, v in top if v > 0)
        return (f"{self.start_s * 1e3:10.3f} - {self.end_s * 1e3:10.3f} ms  {self.kind:<9} "
                f"{self.where}" + (f"  ({detail} ms)" if detail else ""))


def trace_back(nodes: list[Node], last: int) -> list[int]:
    """Node indices from the epoch start to ``last``, each the gate of the next."""
    path: list[int] = []
    for _ in range(len(nodes) + 1):
        if last < 0:
            return path[::-1]
        path.append(last)
        last = nodes[last].gate
    raise RuntimeError("the gate chain has a cycle")  # a gate always ends before its node starts


def attribute(nodes: list[Node], path: list[int]) -> list[tuple[Node, dict]]:
    """Each path node with the seconds it owns, by phase."""
    out, t = [], 0.0
    for i in path:
        n = nodes[i]
        own = max(n.end - t, 0.0)
        if n.kind == "flow" and n.overlap:
            hidden = max(0.0, min(n.end, n.overlap[1]) - max(t, n.overlap[0]))
            out.append((n, {n.overlap[2]: hidden, "communicate": own - hidden}))
        else:
            out.append((n, {n.phase: own}))
        t = max(t, n.end)
    return out


def segments(owned: list[tuple[Node, dict]]) -> list[PathSegment]:
    """Consecutive compute spans on one resource merged into one line; one line per exchange."""
    segs: list[PathSegment] = []
    t = 0.0
    for n, phases in owned:
        kind = "exchange" if n.kind == "flow" else n.kind
        prev = segs[-1] if segs else None
        if prev is not None and kind == "compute" == prev.kind and prev.where == n.where:
            merged = dict(prev.phases_s)
            for k, v in phases.items():
                merged[k] = merged.get(k, 0.0) + v
            segs[-1] = PathSegment(prev.start_s, n.end, kind, n.where, merged)
        else:
            segs.append(PathSegment(t, n.end, kind, n.where, dict(phases)))
        t = max(t, n.end)
    return segs


def phase_totals(owned: list[tuple[Node, dict]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for _, phases in owned:
        for k, v in phases.items():
            totals[k] = totals.get(k, 0.0) + v
    return totals
