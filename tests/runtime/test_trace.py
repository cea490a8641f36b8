"""PhaseTimer spans and breakdowns (with a fake clock), thread-safe add, Chrome-trace export."""

import json
import threading

import pytest

from adaqp.runtime.trace import PhaseTimer, chrome_trace


class FakeClock:
    """Returns the nanosecond values it was given, one per call."""

    def __init__(self, *ticks):
        self.ticks = list(ticks)

    def __call__(self):
        return self.ticks.pop(0)


def test_phase_records_exact_spans_and_epoch_breakdown_sums_them():
    timer = PhaseTimer(rank=0, clock=FakeClock(100, 350, 400, 1400, 2000, 2500, 3000, 3100))
    timer.mark_epoch(0)
    with timer.phase("quantize"):
        pass
    with timer.phase("aggregate", track="main"):
        pass
    timer.mark_epoch(1)
    with timer.phase("quantize"):
        pass
    with timer.phase("quantize", track="comm"):
        pass
    assert [(e["name"], e["start_ns"], e["end_ns"], e["epoch"]) for e in timer.events()] == [
        ("quantize", 100, 350, 0), ("aggregate", 400, 1400, 0), ("quantize", 2000, 2500, 1), ("quantize", 3000, 3100, 1)]
    assert timer.epoch_breakdown(0) == {"quantize": 250e-9, "aggregate": 1000e-9}
    assert timer.epoch_breakdown(1) == {"quantize": 600e-9}
    assert timer.epoch_breakdown(5) == {}


def test_span_keeps_its_start_epoch_and_exceptions_still_record():
    timer = PhaseTimer(rank=2, clock=FakeClock(10, 20))
    timer.mark_epoch(3)
    with pytest.raises(KeyError), timer.phase("forward"):
        timer.mark_epoch(4)
        raise KeyError("boom")
    assert timer.events() == [{"rank": 2, "name": "forward", "track": "main", "start_ns": 10, "end_ns": 20, "epoch": 3}]


def test_add_align_and_disabled_timer():
    timer = PhaseTimer(rank=1, clock=FakeClock())
    timer.mark_epoch(7)
    timer.add("send", "comm", 1_000, 4_000)
    timer.add("recv", "comm", 5_000, 6_000, epoch=6)
    timer.align(500)
    assert [(e["start_ns"], e["end_ns"], e["epoch"]) for e in timer.events()] == [(500, 3500, 7), (4500, 5500, 6)]
    with pytest.raises(ValueError):
        timer.add("bad", "comm", 10, 5)

    off = PhaseTimer(rank=0, enabled=False, clock=FakeClock())  # an empty clock: reading it would fail
    with off.phase("quantize"):
        pass
    off.add("send", "comm", 0, 1)
    assert off.events() == [] and off.epoch_breakdown(0) == {}


def test_add_is_thread_safe():
    timer = PhaseTimer(rank=0)
    timer.mark_epoch(0)

    def record(k):
        for i in range(2000):
            timer.add(f"t{k}", "comm", i, i + 1)

    threads = [threading.Thread(target=record, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(timer.events()) == 16000
    assert timer.epoch_breakdown(0) == {f"t{k}": 2000e-9 for k in range(8)}


def test_real_clock_spans_are_positive():
    timer = PhaseTimer(rank=0)
    with timer.phase("sleepless"):
        sum(range(1000))
    (ev,) = timer.events()
    assert ev["end_ns"] >= ev["start_ns"] > 0


def test_chrome_trace_structure(tmp_path):
    r0 = PhaseTimer(rank=0, clock=FakeClock(5_000, 8_000))
    r0.mark_epoch(0)
    with r0.phase("central"):
        pass
    r0.add("exchange", "comm", 6_000, 12_000)
    r1 = PhaseTimer(rank=1, clock=FakeClock(2_000, 3_500))
    r1.mark_epoch(0)
    with r1.phase("marginal", track="stream1"):
        pass

    path = chrome_trace([r0.events(), r1.events()], tmp_path / "trace.json")
    doc = json.loads(path.read_text())
    events = doc["traceEvents"]
    spans = {(e["pid"], e["name"]): e for e in events if e["ph"] == "X"}
    # times in µs from the earliest span of any rank (rank 1's at 2000 ns)
    assert spans[(0, "central")]["ts"] == 3.0 and spans[(0, "central")]["dur"] == 3.0
    assert spans[(0, "exchange")]["ts"] == 4.0 and spans[(0, "exchange")]["dur"] == 6.0
    assert spans[(1, "marginal")]["ts"] == 0.0 and spans[(1, "marginal")]["dur"] == 1.5
    assert spans[(0, "central")]["args"] == {"epoch": 0}

    meta = [e for e in events if e["ph"] == "M"]
    procs = {e["pid"]: e["args"]["name"] for e in meta if e["name"] == "process_name"}
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in meta if e["name"] == "thread_name"}
    assert procs == {0: "rank 0", 1: "rank 1"}
    tid = {name: t for (_, t), name in threads.items()}
    assert set(threads) == {(0, tid["main"]), (0, tid["comm"]), (1, tid["stream1"])}
    assert len(set(tid.values())) == 3 and tid["main"] == 0
    assert all(spans[(p, n)]["tid"] == tid[spans[(p, n)]["cat"]] for p, n in spans)
    assert all(isinstance(e["pid"], int) and isinstance(e["tid"], int) for e in events)


def test_chrome_trace_of_no_events(tmp_path):
    doc = json.loads(chrome_trace([[]], tmp_path / "t.json").read_text())
    assert [e["name"] for e in doc["traceEvents"]] == ["process_name", "process_sort_index"]
