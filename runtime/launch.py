"""Run N local ranks as processes, or join a job started by torchrun.

``spawn`` is the local launcher used by tests and single-machine runs. Its core promise is that a
failing rank never hangs the caller: when any rank raises or dies, the parent kills the others
(they may be blocked in a collective waiting for the dead peer) and raises :class:`RankFailure`
with one line naming the rank and the cause.

How ``fn`` reaches the children: the "spawn" start method starts fresh interpreters, so ``fn`` is
passed *by name*, never pickled: a string ``"package.module:function"`` or
``"/path/to/file.py:function"``, or a module-level callable, which the parent turns into one of
those two forms (the module name when it can be imported, else its source file). The file form is
what lets functions defined in modules that are not importable by name (pytest's importlib mode)
run in a child: the child loads that file under a private module name.

``torch`` is imported lazily here so that a child applies ``env`` before torch is loaded.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import multiprocessing as mp
import os
import random
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from multiprocessing.connection import wait
from typing import Any

from adaqp.errors import AdaqpInputError

_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
# After the first failure, wait this long for a more telling report: a rank whose collective failed
# because its peer vanished is a victim, and the peer's own death or exception is the cause.
_SETTLE_S = 1.0
_TERM_GRACE_S = 3.0


class RankFailure(RuntimeError):
    """A rank raised or died; ``rank``, ``cause`` and the child's ``traceback`` (if any) are kept."""

    def __init__(self, rank: int, cause: str, traceback_text: str = "", others: int = 0):
        more = f" ({others} other rank(s) failed after it)" if others else ""
        super().__init__(f"rank {rank} failed: {cause}{more}")
        self.rank, self.cause, self.traceback = rank, cause, traceback_text


def free_port(addr: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``addr`` right now (the OS picks it; racy but good enough)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def init_process_group_from_env(backend: str = "gloo", timeout_s: float = 1800.0) -> tuple[int, int]:
    """Join the job described by torchrun's environment; return ``(rank, world_size)``.

    Without any torchrun variable this starts a one-rank group on loopback, so the same entry
    point runs standalone. An already initialised group is reused.
    """
    import torch.distributed as dist

    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    present = [v for v in _TORCHRUN_VARS if v in os.environ]
    timeout = timedelta(seconds=timeout_s)
    if not present:
        dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{free_port()}",
                                rank=0, world_size=1, timeout=timeout)
    elif len(present) < len(_TORCHRUN_VARS):
        missing = ", ".join(v for v in _TORCHRUN_VARS if v not in os.environ)
        raise AdaqpInputError(f"incomplete torchrun environment: {missing} not set")
    else:
        dist.init_process_group(backend, init_method="env://", timeout=timeout)
    return dist.get_rank(), dist.get_world_size()


def _fn_spec(fn: Callable | str) -> str:
    """Name ``fn`` so that a fresh interpreter can find it (see the module docstring)."""
    if isinstance(fn, str):
        if ":" not in fn:
            raise AdaqpInputError(f"function spec {fn!r} must look like 'module:function' or 'file.py:function'")
        return fn
    qualname = getattr(fn, "__qualname__", "")
    if not callable(fn) or not qualname or "<" in qualname:
        raise AdaqpInputError(f"spawn needs a module-level function, got {fn!r}")
    code = getattr(fn, "__code__", None)  # a function's own record of its file, module registered or not
    source = code.co_filename if code is not None else getattr(sys.modules.get(fn.__module__), "__file__", None)
    try:
        spec = importlib.util.find_spec(fn.__module__)
    except (ImportError, ValueError):
        spec = None
    # the name only counts if importing it in the child yields this very file
    if spec is not None and (source is None or spec.origin == os.path.abspath(source)):
        return f"{fn.__module__}:{qualname}"
    if source is None or not os.path.isfile(source):
        raise AdaqpInputError(f"cannot locate the module of {qualname} for the child processes")
    return f"{os.path.abspath(source)}:{qualname}"


def _resolve(spec: str) -> Callable:
    where, _, qualname = spec.rpartition(":")
    if where.endswith(".py"):
        name = "_adaqp_spawned_" + hashlib.sha1(where.encode()).hexdigest()[:12]
        mod_spec = importlib.util.spec_from_file_location(name, where)
        if mod_spec is None or mod_spec.loader is None:
            raise ImportError(f"cannot load {where}")
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module  # registered first, as a regular import would (dataclasses need it)
        mod_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _child_main(spec, rank, world, args, backend, addr, port, timeout_s, env, conn, netns=None) -> None:
    """Body of one rank: set up, run ``fn``, send ``("ok", value)`` or ``("error", cause, tb)``."""
    try:
        if netns is not None:  # before torch: threads and sockets stay in the namespace they start in
            from adaqp.runtime.emulate import enter_netns

            enter_netns(netns)
        # env first: torch is imported only below, so settings read at import (threads...) apply
        os.environ.update(env)
        from adaqp.runtime.hostmem import keep_freed_pages

        keep_freed_pages()  # as in the command line's process (runtime.hostmem says why)
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                          LOCAL_WORLD_SIZE=str(world),  # all on this host (runtime.placement reads both)
                          MASTER_ADDR=addr, MASTER_PORT=str(port))
        import torch
        import torch.distributed as dist

        from adaqp.runtime.transport import release_direction_groups

        if "OMP_NUM_THREADS" in env:  # torch may already be loaded (the parent's main module)
            torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
        fn = _resolve(spec)
        dist.init_process_group(backend, init_method=f"tcp://{addr}:{port}", rank=rank,
                                world_size=world, timeout=timedelta(seconds=timeout_s))
        value = fn(rank, world, *args)
        release_direction_groups()
        dist.destroy_process_group()
        conn.send(("ok", value))
    except BaseException as e:  # noqa: BLE001 - everything is reported to the parent
        try:
            conn.send(("error", _one_line(e), traceback.format_exc(), _is_victim(e)))
        finally:
            conn.close()
        # no destroy_process_group: peers may be mid-collective; exiting closes our sockets anyway
        os._exit(1)
    conn.close()


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def _is_victim(e: BaseException) -> bool:
    """True for errors that say a peer went away rather than what went wrong (see _SETTLE_S)."""
    # Gloo reports a vanished peer as a plain RuntimeError ("... Connection closed by peer ...")
    import torch.distributed as dist

    text = str(e).lower()
    return isinstance(e, getattr(dist, "DistError", ())) or (
        isinstance(e, RuntimeError) and any(w in text for w in ("gloo", "connection", "by peer", "timed out")))


def _death_cause(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by signal {-exitcode} ({signal.Signals(-exitcode).name})"
        except ValueError:
            return f"killed by signal {-exitcode}"
    if exitcode == 0:
        return "exited with code 0 without reporting a result"
    return f"exited with code {exitcode}"


def _loopback_env(addr: str, env: dict[str, str]) -> dict[str, str]:
    """Keep Gloo's data connections on loopback too, unless the caller chose an interface."""
    env = dict(env)
    if addr.startswith("127.") and "GLOO_SOCKET_IFNAME" not in env and "GLOO_SOCKET_IFNAME" not in os.environ:
        names = {name for _, name in socket.if_nameindex()}
        for lo in ("lo", "lo0"):
            if lo in names:
                env["GLOO_SOCKET_IFNAME"] = lo
                break
    return env


def spawn(fn: Callable | str, nprocs: int, args: tuple = (), *, backend: str = "gloo",
          master_addr: str = "127.0.0.1", master_port: int | None = None, timeout_s: float = 60.0,
          env: dict[str, str] | None = None, netns: list[str] | None = None) -> list:
    """Run ``fn(rank, world_size, *args)`` on ``nprocs`` fresh processes; return their values by rank.

    Each child joins a process group over ``tcp://master_addr:master_port`` (loopback and a free
    port by default). Raises :class:`RankFailure` as soon as any rank raises or dies, after killing
    the rest. ``args`` and the return values travel pickled over pipes: keep them small and plain.
    As with any "spawn" start method, a script calling this needs ``if __name__ == "__main__":``.

    ``netns`` (one network namespace per rank, see :mod:`adaqp.runtime.emulate`): each rank enters
    its namespace before anything else; ``master_addr`` must then be rank 0's address in it.
    """
    if nprocs < 1:
        raise AdaqpInputError(f"nprocs must be at least 1, got {nprocs}")
    if netns is not None and len(netns) != nprocs:
        raise AdaqpInputError(f"netns names {len(netns)} namespaces for {nprocs} ranks")
    spec = _fn_spec(fn)
    if netns is None:
        port = master_port or free_port(master_addr)
        child_env = _loopback_env(master_addr, env or {})
    else:
        # free_port would bind in the parent's namespace, where master_addr does not exist; rank 0's
        # namespace is fresh and private, so any high port is free there
        from adaqp.runtime.emulate import IFNAME

        port = master_port or random.randint(20000, 60000)
        child_env = {"GLOO_SOCKET_IFNAME": IFNAME, **(env or {})}  # Gloo's data links on the shaped NIC
        # the namespaces have no name service: c10d warns once per socket that it cannot name the peer
        child_env.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    if "OMP_NUM_THREADS" not in child_env and "OMP_NUM_THREADS" not in os.environ:
        # N ranks x all-cores thread pools oversubscribe the CPU, and spinning OpenMP workers
        # then slow every rank down by orders of magnitude: share the cores out instead.
        child_env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nprocs))
    ctx = mp.get_context("spawn")
    procs, conns = [], []
    try:
        for rank in range(nprocs):
            recv, send = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_child_main, name=f"adaqp-rank{rank}",
                            args=(spec, rank, nprocs, args, backend, master_addr, port, timeout_s,
                                  child_env, send, None if netns is None else netns[rank]))
            p.start()
            send.close()  # the parent keeps only the read end, so a dead child reads as EOF
            procs.append(p)
            conns.append(recv)
        results = _supervise(procs, conns)
        deadline = time.monotonic() + _TERM_GRACE_S
        for p in procs:  # every rank has reported; let them exit on their own before any SIGTERM
            p.join(timeout=max(0.0, deadline - time.monotonic()))
        return results
    finally:
        _terminate(procs)
        for c in conns:
            c.close()


def _supervise(procs: list, conns: list) -> list:
    """Collect one report per rank; on the first failure stop and raise (after a short settle)."""
    results: dict[int, Any] = {}
    failures: list[tuple[int, str, str, bool]] = []  # (rank, cause, traceback, victim)
    first_failure_at = None
    while len(results) < len(procs):
        live = [i for i in range(len(procs)) if i not in results and not any(f[0] == i for f in failures)]
        if failures and (not live or not all(f[3] for f in failures)
                         or time.monotonic() - first_failure_at > _SETTLE_S):
            break
        ready = wait([procs[i].sentinel for i in live] + [conns[i] for i in live], timeout=0.2)
        for i in live:
            if conns[i] not in ready and procs[i].sentinel not in ready:
                continue
            report = _read_report(procs[i], conns[i])
            if report is None:
                continue
            if report[0] == "ok":
                results[i] = report[1]
            else:
                failures.append((i, *report[1:]))
                first_failure_at = first_failure_at or time.monotonic()
    if failures:
        # the cause is the first non-victim failure; victims only when nothing else is known
        rank, cause, tb, _ = next((f for f in failures if not f[3]), failures[0])
        raise RankFailure(rank, cause, tb, others=len(failures) - 1)
    return [results[i] for i in range(len(procs))]


def _read_report(proc, conn):
    """One rank's report, or None while it is still running; a death without a report is a failure."""
    if conn.poll():
        try:
            return conn.recv()
        except EOFError:
            pass
        except Exception as e:  # noqa: BLE001 - e.g. a tensor in the result: its shared memory died with the child
            return ("error", f"its result could not be read ({type(e).__name__}: {e}); return plain "
                             "Python values or numpy arrays, not tensors", "", False)
    if proc.exitcode is None:
        proc.join(timeout=0.05)  # the pipe can close a moment before the exit status is known
        if proc.exitcode is None:
            return None
    return ("error", _death_cause(proc.exitcode), "", False)


def _terminate(procs: list) -> None:
    """SIGTERM every live child, SIGKILL whatever is left after a grace period, reap them all."""
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.terminate()
    deadline = time.monotonic() + _TERM_GRACE_S
    for p in alive:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in alive:
        if p.is_alive():
            p.kill()
            p.join(timeout=5.0)
