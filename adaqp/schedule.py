"""The :class:`Schedule`: what an epoch does with its messages (quantize them, overlap them with
central aggregation, or use last epoch's). Presets ``vanilla``, ``quant``, ``overlap``, ``adaqp``,
``pipegcn`` (stale halo rows, Wan et al. 2022) and its quantizing twin ``pipegcn-q``; more can be
registered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from adaqp.errors import require

# ---- Schedule ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    """What an epoch does with messages: quantize them, overlap them with central aggregation,
    and (``stale``) aggregate over the halo rows and gradients of the previous epoch, so that an
    exchange runs under the compute of the next epoch (PipeGCN; docs/schedules.md)."""

    name: str
    quantize: bool
    overlap: bool
    stale: bool = False

    def __post_init__(self) -> None:
        require(isinstance(self.name, str) and self.name.strip() == self.name != "",
                f"schedule name must be a non-empty string without spaces around, got {self.name!r}")
        for f in ("quantize", "overlap", "stale"):
            require(isinstance(getattr(self, f), bool),
                    f"schedule.{f} must be true or false, got {getattr(self, f)!r}")

    @classmethod
    def parse(cls, name: "str | Schedule") -> "Schedule":
        """The registered schedule called ``name`` (case-insensitive)."""
        if isinstance(name, Schedule):
            return name
        key = str(name).strip().lower()
        require(key in _SCHEDULES, f"unknown schedule {name!r}; choose from {', '.join(_SCHEDULES)}")
        return _SCHEDULES[key]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "quantize": self.quantize, "overlap": self.overlap, "stale": self.stale}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Schedule":
        # files written before ``stale`` existed have the three other fields: they are not stale
        required, allowed = {"name", "quantize", "overlap"}, {"name", "quantize", "overlap", "stale"}
        require(isinstance(d, Mapping) and required <= set(d) <= allowed,
                f"schedule must have exactly the fields name, quantize, overlap (and optionally stale); got {d!r}")
        s = cls(d["name"], d["quantize"], d["overlap"], d.get("stale", False))
        known = _SCHEDULES.get(s.name.lower())
        # A file must not silently redefine a preset: 'adaqp' always means quantize + overlap.
        require(known is None or known == s, f"schedule {s.name!r} is registered as {known}, "
                                             f"not quantize={s.quantize}, overlap={s.overlap}, stale={s.stale}")
        return s


_SCHEDULES: dict[str, Schedule] = {}


def register_schedule(schedule: Schedule, replace: bool = False) -> Schedule:
    """Make ``schedule`` known to :meth:`Schedule.parse`; redefining a name needs ``replace``."""
    require(isinstance(schedule, Schedule), f"expected a Schedule, got {type(schedule).__name__}")
    key = schedule.name.lower()
    old = _SCHEDULES.get(key)
    require(replace or old is None or old == schedule,
            f"schedule {schedule.name!r} is already registered as {old}")
    _SCHEDULES[key] = schedule
    return schedule


def schedule_names() -> tuple[str, ...]:
    return tuple(_SCHEDULES)


VANILLA = register_schedule(Schedule("vanilla", quantize=False, overlap=False))
QUANT = register_schedule(Schedule("quant", quantize=True, overlap=False))
OVERLAP = register_schedule(Schedule("overlap", quantize=False, overlap=True))
ADAQP = register_schedule(Schedule("adaqp", quantize=True, overlap=True))
# overlap: every exchange runs under compute (the next epoch's), not only under central aggregation
PIPEGCN = register_schedule(Schedule("pipegcn", quantize=False, overlap=True, stale=True))
# quantized stale messages are a schedule of their own, as quant is vanilla's: --bits gives the width
PIPEGCN_Q = register_schedule(Schedule("pipegcn-q", quantize=True, overlap=True, stale=True))
