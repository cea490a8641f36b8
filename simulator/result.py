"""What a simulated epoch reports: times, phases, utilisation, critical path, trace events.

Definitions (chosen to sit beside :class:`adaqp.costmodel.analytic.Estimate`):

- ``epoch_time_s``: when the last rank finishes.
- ``comm_time_s``: wall time during which some exchange had flows in flight (the union over
  exchanges of first post to last arrival) plus the all-reduce — communication "as if nothing hid
  it"; with balanced ranks it equals the analytic sum of exchange times.
- ``exposed_comm_s``: communication on the critical path, less the hidden compute it overlapped.
- ``compute_time_s``: the rest of the critical path (``epoch - exposed``), as in the analytic model.
- ``phases_s``: the critical path by phase (compute phases, ``communicate``, ``allreduce``); the
  values add up to the epoch time.
- ``busy_s``: per compute phase the slowest rank's total, or slowest device's where ranks share a
  GPU — the analytic model's ``phases_s``.
- ``utilisation``: per resource instance, busy seconds / epoch. A link is busy ``bytes / bandwidth``
  (what it carried at full speed); a compute resource the wall time some rank computed on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from adaqp.costmodel.analytic import device_max
from adaqp.simulator.critical import attribute, phase_totals, segments, trace_back
from adaqp.simulator.engine import Epoch


@dataclass(frozen=True)
class SimResult:
    epoch_time_s: float
    comm_time_s: float
    exposed_comm_s: float
    compute_time_s: float
    allreduce_s: float
    phases_s: dict
    busy_s: dict
    utilisation: list  # dicts: resource, kind, busy_s, utilisation
    critical_path: list  # PathSegment, in time order
    exchanges: list  # dicts: layer, direction, start_s, end_s, seconds, bottleneck
    events: list = field(repr=False, default_factory=list)  # per rank, the runtime's span dicts
    rank_end_s: np.ndarray = field(repr=False, default=None)
    flows: int = 0
    rate_updates: int = 0

    def summary(self) -> dict:
        return {"epoch_time_s": self.epoch_time_s, "comm_time_s": self.comm_time_s,
                "compute_time_s": self.compute_time_s, "exposed_comm_s": self.exposed_comm_s,
                "allreduce_s": self.allreduce_s, "phases_s": self.phases_s, "busy_s": self.busy_s,
                "exchanges": self.exchanges, "critical_path": self.critical_path_lines(),
                "flows": self.flows, "rate_updates": self.rate_updates}

    def critical_path_lines(self) -> list[str]:
        return [s.line() for s in self.critical_path]

    def utilisation_by_kind(self) -> list[dict]:
        """Per resource kind: instances, mean and max utilisation, the busiest instance."""
        kinds: dict[str, list[dict]] = {}
        for row in self.utilisation:
            kinds.setdefault(row["kind"], []).append(row)
        out = []
        for kind, rows in kinds.items():
            top = max(rows, key=lambda r: r["utilisation"])
            out.append({"kind": kind, "instances": len(rows),
                        "mean": float(np.mean([r["utilisation"] for r in rows])),
                        "max": top["utilisation"], "busiest": top["resource"]})
        return out


def build_result(ep: Epoch) -> SimResult:
    epoch = float(ep.env.now)
    ends = np.array([ep.nodes[n].end if n >= 0 else 0.0 for n in ep.last_node])
    last = ep.last_node[int(np.argmax(ends))] if ends.size else -1
    owned = attribute(ep.nodes, trace_back(ep.nodes, last))
    phases = phase_totals(owned)
    ar = sum(b - a for a, b in ep.allreduce_spans)
    exposed = phases.get("communicate", 0.0) + phases.get("allreduce", 0.0)
    exch = _exchanges(ep)
    spans = [(e["start_s"], e["end_s"]) for e in exch if e["seconds"] > 0] + ep.allreduce_spans
    busy = {k: device_max(ep.cluster, v) for k, v in ep.busy.items()}
    return SimResult(epoch, _union(spans), exposed, epoch - exposed, ar, phases, busy,
                     _utilisation(ep, epoch), segments(owned), exch, ep.events, ends,
                     len(ep.src), ep.net.updates)


def _exchanges(ep: Epoch) -> list[dict]:
    out = []
    for k, t in enumerate(ep.exchanges):
        mine = np.flatnonzero(ep.fk == k)
        if mine.size == 0:
            out.append({"layer": t.layer, "direction": t.direction, "start_s": 0.0, "end_s": 0.0,
                        "seconds": 0.0, "bottleneck": "none"})
            continue
        start, end = float(ep.start[mine].min()), float(ep.arrive[mine].max())
        last = mine[np.argmax(ep.arrive[mine])]
        out.append({"layer": t.layer, "direction": t.direction, "start_s": start, "end_s": end,
                    "seconds": end - start, "bottleneck": ep.layout.names[ep.bott[last]]})
    return out


def _union(spans: list[tuple[float, float]]) -> float:
    total, reach = 0.0, -np.inf
    for a, b in sorted(spans):
        if b > reach:
            total += b - max(a, reach)
            reach = b
    return total


def _utilisation(ep: Epoch, epoch: float) -> list[dict]:
    rows = [{"resource": name, "kind": "compute", "busy_s": float(c.busy_s)}
            for name, c in zip(ep.compute_names, ep.compute)]
    busy = ep.carried[:-1] / ep.layout.bw_Bps
    rows += [{"resource": name, "kind": kind, "busy_s": float(b)}
             for name, kind, b in zip(ep.layout.names, ep.layout.kinds, busy)]
    for r in rows:
        r["utilisation"] = r["busy_s"] / epoch if epoch > 0 else 0.0
    return rows
