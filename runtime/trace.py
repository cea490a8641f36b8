"""Phase timing that does not distort what it measures, and Chrome-trace export.

Recording a span costs two clock reads and one list append: no device synchronisation, no I/O,
no formatting. Whoever wants a span to include GPU work must synchronise for their own reasons
before it ends; the timer never does it for them.

Clocks. Spans use ``time.perf_counter_ns`` (CLOCK_MONOTONIC on Linux), which all processes on
one machine share, so ranks started by ``spawn`` line up in a trace as recorded. Ranks on
different machines have unrelated monotonic clocks: measure each rank's offset at the first
barrier (e.g. its clock reading when the barrier returns minus rank 0's) and call
``timer.align(offset_ns)``; the offset is subtracted from every span on export.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

from adaqp.trace_format import chrome_trace  # noqa: F401  (re-export: one trace writer)


_NULL = nullcontext()
_CURRENT = object()  # "the epoch marked when add() runs"; None is a real value (before any mark)


class PhaseTimer:
    """Named spans ``(name, track, start, end, epoch)`` of one rank.

    ``track`` says where the work ran ("main", "comm", a CUDA stream...); each track becomes one
    row in the trace. ``clock`` returns integer nanoseconds; tests pass a fake one.
    """

    def __init__(self, rank: int, enabled: bool = True, clock: Callable[[], int] = time.perf_counter_ns):
        self.rank = rank
        self.enabled = enabled
        self.now = clock  # exposed so other threads time their spans on the same clock
        self.epoch: int | None = None
        self._offset_ns = 0
        self._spans: list[tuple[str, str, int, int, int | None]] = []
        self._lock = threading.Lock()

    def mark_epoch(self, epoch: int) -> None:
        """Spans recorded from now on (without an explicit epoch) belong to ``epoch``."""
        self.epoch = epoch

    def phase(self, name: str, track: str = "main"):
        """Context manager timing its body as one span of ``name`` on ``track``."""
        return self._phase(name, track) if self.enabled else _NULL

    @contextmanager
    def _phase(self, name: str, track: str) -> Iterator[None]:
        epoch = self.epoch  # the epoch the span started in, even if it ends after a mark_epoch
        start = self.now()
        try:
            yield
        finally:
            end = self.now()
            self.add(name, track, start, end, epoch=epoch)

    def add(self, name: str, track: str, start_ns: int, end_ns: int, epoch=_CURRENT) -> None:
        """Record a span measured elsewhere (e.g. by a communication thread); safe from any thread.

        ``epoch`` defaults to the current one; a thread whose span began before an epoch mark
        should pass the epoch it read when the span began.
        """
        if not self.enabled:
            return
        if end_ns < start_ns:
            raise ValueError(f"span {name!r} ends before it starts ({start_ns} > {end_ns})")
        span = (name, track, int(start_ns), int(end_ns), self.epoch if epoch is _CURRENT else epoch)
        with self._lock:  # list.append is atomic in CPython, but not promised by the language
            self._spans.append(span)

    def align(self, offset_ns: int) -> None:
        """Set how far this rank's clock is ahead of the reference rank's (subtracted on export)."""
        self._offset_ns = int(offset_ns)

    def epoch_breakdown(self, epoch: int) -> dict[str, float]:
        """Seconds per phase name in ``epoch``: spans of one name are summed, across tracks too."""
        totals: dict[str, int] = defaultdict(int)
        for name, _, start, end, ep in self._snapshot():
            if ep == epoch:
                totals[name] += end - start
        return {name: ns / 1e9 for name, ns in totals.items()}

    def events(self) -> list[dict]:
        """Every span as a plain dict (JSON-able, cheap to send to rank 0 or the parent)."""
        return [{"rank": self.rank, "name": name, "track": track, "start_ns": start - self._offset_ns,
                 "end_ns": end - self._offset_ns, "epoch": ep}
                for name, track, start, end, ep in self._snapshot()]

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def _snapshot(self) -> list[tuple]:
        with self._lock:
            return list(self._spans)
