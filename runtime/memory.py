"""Peak memory of one rank's training, as ``adaqp train`` records it (``peak_memory_bytes``).

Definitions (docs/memory.md):

- **CUDA**: ``torch.cuda.max_memory_allocated`` on the rank's device over the training loop, less
  what was allocated before the rank loaded its data. It counts the tensors the rank holds (data,
  operators, buffers, weights, optimizer state, activations), not the caching allocator's reserve
  nor the CUDA context.
- **CPU**: the growth of the process's resident set: its peak (``VmHWM``) during the training loop
  less its size (``VmRSS``) before the rank loaded its data. The high-water mark is reset when the
  loop starts (Linux ``/proc/self/clear_refs``), so the whole graph each rank reads and then cuts
  to its own rows does not count, while the rows it keeps do. Where the reset is refused, the
  peak is ``ru_maxrss`` since the process started (``measure`` says which); a spawned child's
  ``ru_maxrss`` also includes its start-up, hence the difference from the size at the start.

Interpreter, libraries and thread stacks loaded before the rank starts are in the baseline, so
both figures are what this run adds, comparable with :func:`adaqp.costmodel.memory.peak_memory_bytes`.
"""

from __future__ import annotations

import gc
import resource
import sys
from pathlib import Path

import torch

STATUS = Path("/proc/self/status")


def _status_bytes(field: str) -> int | None:
    """``VmRSS`` / ``VmHWM`` of this process in bytes (Linux), None elsewhere."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # the kernel reports kB
    except OSError:
        return None
    return None


def _maxrss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)  # macOS: bytes; Linux: kB


def _release_freed() -> None:
    """Hand freed heap back to the OS before reading the baseline: a previous run in this process
    (``train_many``) would otherwise leave the baseline high and the growth too small."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


class PeakMemory:
    """Create before the rank loads anything; ``training_starts`` before the first epoch;
    ``peak_bytes`` after the last."""

    def __init__(self) -> None:
        _release_freed()
        self.rss_start = _status_bytes("VmRSS")
        if self.rss_start is None:
            self.rss_start = _maxrss_bytes()
        # no CUDA call unless CUDA is up already: it would open a context on device 0 in every rank
        self.cuda_start = torch.cuda.memory_allocated() if torch.cuda.is_initialized() else 0
        self.device: torch.device | None = None
        self.measure = "cpu_rss_growth"

    def training_starts(self, device: torch.device) -> None:
        self.device = device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)  # the peak restarts at what is allocated now
            self.measure = "cuda_max_memory_allocated"
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")  # "5": reset the peak RSS (Linux >= 4.0)
        except OSError:
            self.measure = "cpu_maxrss_growth"  # the peak since the process started

    def peak_bytes(self) -> int:
        if self.device is not None and self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device) - self.cuda_start)
        peak = _status_bytes("VmHWM") if self.measure == "cpu_rss_growth" else None
        return max(0, int((peak if peak is not None else _maxrss_bytes()) - self.rss_start))


def summarize(results: list[dict]) -> dict:
    """``{"per_rank": [...], "max": ..., "measure": ...}`` from the ranks' ``train_rank`` results."""
    per_rank = [r.get("peak_memory_bytes") for r in sorted(results, key=lambda r: r["rank"])]
    known = [b for b in per_rank if b is not None]
    return {"per_rank": per_rank, "max": max(known) if known else None,
            "measure": results[0].get("peak_memory_measure") if results else None}
