"""``gloo-staged``: the exchange of CUDA ranks that share a GPU, through pinned host buffers.

NCCL refuses two ranks on one device and Gloo crashed on CUDA tensors, so each exchange is
D2H into a pinned buffer -> Gloo (:func:`~adaqp.runtime.transport.duplex_all_to_all`) -> H2D.

Overlap without blocking the host: the launch only records a *ready* event on the caller's
current stream and starts a communication thread. The thread makes a second CUDA stream (one
per device, reused) wait on that event, copies D2H on it, synchronises that stream (Gloo reads
the host buffer), runs Gloo, copies H2D on it and records a *done* event. ``wait()`` joins the
thread and makes the caller's current stream wait on *done*: the host never waits for compute
it queued before the launch, and kernels queued after the wait run after the data landed.

Pinned buffers are allocated at first use, one pair per device buffer (the exchanger builds its
buffers once per plan, so: once per plan), and dropped when that device buffer is freed (a new
plan). Allocating pinned memory costs about as much as the copy itself, hence never per call.
With CPU tensors the same code runs without streams or pinning (tests exercise it on CPU).
"""

from __future__ import annotations

import threading
import weakref

import torch
import torch.distributed as dist

from adaqp.runtime.transport import Done, direction_groups, duplex_all_to_all


class HostBuffers:
    """Host twins of device buffers: allocated at first use, freed with the device buffer."""

    def __init__(self) -> None:
        self._bufs: dict[tuple[int, int], torch.Tensor] = {}
        self.allocations = 0  # how many were ever allocated (tests: once per plan, not per call)

    def __len__(self) -> int:
        return len(self._bufs)

    def twin(self, dev: torch.Tensor) -> torch.Tensor:
        key = (dev.data_ptr(), dev.numel())
        buf = self._bufs.get(key)
        if buf is None:
            buf = torch.empty(dev.numel(), dtype=dev.dtype, pin_memory=dev.is_cuda)
            self._bufs[key] = buf
            self.allocations += 1
            # a freed device buffer's address may be reused by another: forget the twin with it
            weakref.finalize(dev, self._bufs.pop, key, None)
        return buf


class StagedTransport:
    name = "gloo-staged"

    def __init__(self) -> None:
        self.host = HostBuffers()
        self._streams: dict[int, torch.cuda.Stream] = {}
        self._reduce: dict[tuple[int, torch.dtype], torch.Tensor] = {}

    def stream(self, device: torch.device) -> "torch.cuda.Stream":
        """The communication stream of ``device`` (one, reused by every exchange)."""
        idx = device.index if device.index is not None else torch.cuda.current_device()
        if idx not in self._streams:
            self._streams[idx] = torch.cuda.Stream(device=idx)
        return self._streams[idx]

    def all_to_all(self, recv: torch.Tensor, send: torch.Tensor, recv_splits: list[int],
                   send_splits: list[int], async_op: bool):
        direction_groups()  # created collectively on first use: here, not in a thread racing compute
        job = StagedJob(self, recv, send, recv_splits, send_splits)
        if async_op:
            job.start()
            return job
        job.run()
        job.wait()
        return Done()

    def all_reduce(self, t: torch.Tensor) -> None:
        """Blocking sum over ranks, staged through a pinned buffer kept per size (the gradient
        buffer is a fresh tensor every epoch, its size is not)."""
        if not t.is_cuda:
            dist.all_reduce(t)
            return
        key = (t.numel(), t.dtype)
        if key not in self._reduce:
            self._reduce[key] = torch.empty(t.numel(), dtype=t.dtype, pin_memory=True)
        h = self._reduce[key]
        h.copy_(t.reshape(-1))  # blocking: Gloo reads h next. It also orders the last H2D before it
        dist.all_reduce(h)
        t.copy_(h.view_as(t), non_blocking=True)


class StagedJob:
    """One exchange: :meth:`run` (in a thread, or inline when blocking), then :meth:`wait`."""

    def __init__(self, transport: StagedTransport, recv, send, recv_splits, send_splits) -> None:
        self.recv, self.send, self.splits = recv, send, (list(recv_splits), list(send_splits))
        self.h_send, self.h_recv = transport.host.twin(send), transport.host.twin(recv)
        self.cuda = send.is_cuda
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if self.cuda:  # recorded by the caller, on its stream, before anything is queued after
            self.comm = transport.stream(send.device)
            self.ready = torch.cuda.Event()
            self.ready.record(torch.cuda.current_stream(send.device))
            self.done = torch.cuda.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="adaqp-staged-comm", daemon=True)
        self._thread.start()

    def run(self) -> None:
        try:
            if self.cuda:
                with torch.cuda.stream(self.comm):
                    self.comm.wait_event(self.ready)
                    self.h_send.copy_(self.send, non_blocking=True)
                    self.comm.synchronize()  # the host buffer must be complete before Gloo reads it
            else:
                self.h_send.copy_(self.send)
            duplex_all_to_all(self.h_recv, self.h_send, *self.splits).wait()
            if self.cuda:
                with torch.cuda.stream(self.comm):
                    self.recv.copy_(self.h_recv, non_blocking=True)
                    self.done.record(self.comm)
            else:
                self.recv.copy_(self.h_recv)
        except BaseException as e:  # noqa: BLE001 - handed to the caller's wait()
            self.error = e

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.error is not None:
            raise self.error
        if self.cuda:
            torch.cuda.current_stream(self.recv.device).wait_event(self.done)

    def is_completed(self) -> bool:
        return self._thread is None or not self._thread.is_alive()
