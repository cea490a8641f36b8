"""Output conventions shared by every command: a readable table on stdout, and under ``--out``
CSV files plus a ``summary.json`` of the headline figures; stage timers on stderr."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

# the writers live in adaqp.io (the runtime writes its runs with them too); the commands import them from here
from adaqp.io import write_csv, write_summary  # noqa: F401


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Right-aligned plain-text table; ints get thousands separators, floats 3 significant places."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    cells = [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    # text columns read best left-aligned, numbers right-aligned
    left = [all(isinstance(r.get(c), str) for r in rows) for c in columns]

    def line(vals):
        return "  ".join(v.ljust(w) if lf else v.rjust(w) for v, w, lf in zip(vals, widths, left)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 1e6 else f"{v:,.0f}"
    return str(v)


@contextmanager
def stage(label: str, quiet: bool = False) -> Iterator[None]:
    """Announce a step on stderr and report its duration, so long work is never silent."""
    t0 = time.perf_counter()
    if not quiet:
        print(f"· {label} ...", end="", file=sys.stderr, flush=True)
    try:
        yield
    except BaseException:
        if not quiet:
            print(" failed", file=sys.stderr, flush=True)
        raise
    if not quiet:
        print(f" {time.perf_counter() - t0:.2f} s", file=sys.stderr, flush=True)
