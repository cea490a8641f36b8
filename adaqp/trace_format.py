"""Chrome-trace JSON, one format for measured (runtime) and simulated timelines, so the two open
side by side in Perfetto.

One process per rank (``pid`` = rank, named "rank N"), one thread per track ("main" = tid 0 for
the compute stream, then "comm", ...; the same tid for a track on every rank), complete events
(``ph: "X"``) with ``ts``/``dur`` in microseconds from the earliest span, ``cat`` = track and
``args.epoch``. Input: per rank a list of span dicts ``{rank, name, track, start_ns, end_ns,
epoch}`` — what ``runtime.trace.PhaseTimer.events()`` returns and ``SimResult.events`` holds.
"""

from __future__ import annotations

import os
from pathlib import Path

from adaqp.io import write_json


def chrome_trace(events_per_rank: list[list[dict]], path: str | os.PathLike) -> Path:
    """Write the spans of all ranks as Chrome-trace JSON (Perfetto, chrome://tracing)."""
    spans = [(ev.get("rank", i), ev) for i, evs in enumerate(events_per_rank) for ev in evs]
    t0 = min((ev["start_ns"] for _, ev in spans), default=0)
    tid = {"main": 0}  # "main" first, the other tracks in order of appearance
    for _, ev in spans:
        tid.setdefault(ev["track"], len(tid))
    out: list[dict] = []
    ranks = sorted(set(range(len(events_per_rank))) | {r for r, _ in spans})
    for rank in ranks:
        out += _meta(rank, 0, "process_name", {"name": f"rank {rank}"})
        out += _meta(rank, 0, "process_sort_index", {"sort_index": rank})
        for track in sorted({ev["track"] for r, ev in spans if r == rank}, key=tid.get):
            out += _meta(rank, tid[track], "thread_name", {"name": track})
            out += _meta(rank, tid[track], "thread_sort_index", {"sort_index": tid[track]})
    out += [{"ph": "X", "name": ev["name"], "cat": ev["track"], "pid": rank, "tid": tid[ev["track"]],
             "ts": (ev["start_ns"] - t0) / 1e3, "dur": (ev["end_ns"] - ev["start_ns"]) / 1e3,
             "args": {"epoch": ev.get("epoch")}} for rank, ev in spans]
    return write_json(path, {"traceEvents": out, "displayTimeUnit": "ms"})


def _meta(pid: int, tid: int, name: str, args: dict) -> list[dict]:
    return [{"ph": "M", "name": name, "pid": pid, "tid": tid, "args": args}]
