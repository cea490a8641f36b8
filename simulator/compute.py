"""A compute resource shared by the ranks that run on it, as a fluid (processor sharing).

Ranks that time-share one CPU's cores (several ranks of a host, or emulated hosts on one
machine) or one GPU do not queue for it: each job progresses at a speed that depends on how many
jobs are running on the resource right now, and the speeds are re-divided whenever a job starts
or finishes. A rank blocked on a message runs no job, so its share goes to the others — the
effect a static "all ranks compute at once" slow-down cannot show.

A job's ``seconds`` is its duration alone on the resource (what the profile measured). With
``n`` jobs running each advances at ``1 / slowdown(n)`` seconds of work per second; ``slowdown``
comes from :func:`adaqp.costmodel.durations.corun_slowdown`, the function whose value at "every
rank computing" is the analytic model's static scale. Nothing happens between two changes of
``n``, so the cost is one update per job start or finish.
"""

from __future__ import annotations

from typing import Callable

import simpy

_TIE = 1e-12  # relative slack: work left below this fraction of a job counts as done


class SharedCompute:
    """Jobs in flight on one compute resource; ``run(seconds)`` returns an event fired when the
    job's work is done. ``busy_s``: wall time with at least one job running."""

    def __init__(self, env: simpy.Environment, slowdown: Callable[[int], float]):
        self.env, self.slowdown = env, slowdown
        self._slow: dict[int, float] = {}
        self.left: dict[int, float] = {}  # job id -> seconds of work still to do (alone-speed)
        self.size: dict[int, float] = {}
        self.done: dict[int, simpy.Event] = {}
        self.busy_s = 0.0
        self.updates = 0
        self._last = 0.0
        self._gen = 0
        self._ids = 0

    def run(self, seconds: float) -> simpy.Event:
        ev = self.env.event()
        if seconds <= 0:
            return ev.succeed()
        self._advance()
        self._ids += 1
        self.left[self._ids], self.size[self._ids], self.done[self._ids] = seconds, seconds, ev
        self._schedule()
        return ev

    @property
    def running(self) -> int:
        return len(self.left)

    def _speed(self) -> float:
        n = len(self.left)
        if not n:
            return 0.0
        if n not in self._slow:  # one slow-down per job count: it is asked at every update
            self._slow[n] = self.slowdown(n)
        return 1.0 / self._slow[n]

    def _advance(self) -> None:
        """Bring every job's work left up to now, at the speed that held since the last change."""
        now = self.env.now
        dt = now - self._last
        if dt > 0 and self.left:
            step = dt * self._speed()
            for j in self.left:
                self.left[j] -= step
            self.busy_s += dt
        self._last = now

    def _schedule(self) -> None:
        self._gen += 1
        if not self.left:
            return
        self.updates += 1
        gen = self._gen
        delay = max(0.0, min(self.left.values())) / self._speed()
        self.env.timeout(delay).callbacks.append(lambda _e: self._wake(gen))

    def _wake(self, gen: int) -> None:
        if gen != self._gen:
            return  # a start since then re-divided the speeds and scheduled a newer wake-up
        self._advance()
        finished = [j for j, w in self.left.items() if w <= _TIE * max(1.0, self.size[j])]
        for j in finished:
            del self.left[j], self.size[j]
            self.done.pop(j).succeed()
        self._schedule()
