"""An emulated multi-host cluster on one Linux machine: one network namespace per rank.

Topology (all of it inside namespaces this process creates; the host's own network is untouched)::

    host ns adaqp-<pid>-<n>-h0: lo, eth0 10.x.y.1/24 --veth-- h0 --+
    host ns adaqp-<pid>-<n>-h1: lo, eth0 10.x.y.2/24 --veth-- h1 --+-- br0   (switch ns adaqp-<pid>-<n>-sw)
    ...

Both ends of every veth carry a ``tc tbf`` rate limit: ``eth0`` egress in the host namespace is the
NIC's send side, the switch port's egress is its receive side. So each host has a full-duplex NIC of
``rate_bps`` per direction and a non-blocking switch, which is what the simulator models (one NIC per
node with send and receive sides). tbf adds no delay; ``netem`` is unavailable on our machines.

The hosts share the machine's CPU cores; only the links are separate. Needs root and iproute2.
Names carry the creating PID so that clean-up only ever touches what this process made, and so that
:func:`sweep_stale` can find what a killed process left behind.
"""

from __future__ import annotations

import atexit
import ctypes
import itertools
import os
import re
import shutil
import signal
import subprocess
import threading

from adaqp.cluster import tbf_params
from adaqp.errors import AdaqpInputError

__all__ = ["EmulatedNetwork", "check_available", "sweep_stale", "enter_netns", "measure_link", "IFNAME", "tbf_params"]

PREFIX = "adaqp-"
IFNAME = "eth0"
NETNS_DIR = "/var/run/netns"
_OURS = re.compile(r"^adaqp-(\d+)-[\w-]+$")  # adaqp-<creator pid>-...
_CLONE_NEWNET = 0x40000000
_counter = itertools.count()


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if check and res.returncode != 0:
        reason = " ".join((res.stderr or res.stdout).split()) or f"exit code {res.returncode}"
        raise AdaqpInputError(f"network emulation: `{' '.join(cmd)}` failed: {reason}")
    return res


def check_available() -> None:
    """Raise :class:`AdaqpInputError` (one line) unless namespaces, veth, bridges and tbf work here."""
    if os.geteuid() != 0:
        raise AdaqpInputError("network emulation (--link) needs root: it creates network namespaces")
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        raise AdaqpInputError(f"network emulation (--link) needs iproute2: {' and '.join(missing)} not found")
    ns = f"{PREFIX}{os.getpid()}-check{next(_counter)}"
    try:  # exactly what __enter__ uses, in a scratch namespace (containers often forbid some of it)
        _run("ip", "netns", "add", ns)
        _run("ip", "-n", ns, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", ns, "link", "add", "a0", "type", "veth", "peer", "name", "a1")
        _run("ip", "-n", ns, "link", "set", "a1", "master", "br0")
        _run("tc", "-n", ns, "qdisc", "add", "dev", "a0", "root", "tbf", "rate", "10mbit",
             "burst", "16kb", "limit", "100kb")
    finally:
        _run("ip", "netns", "del", ns, check=False)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def sweep_stale() -> list[str]:
    """Delete namespaces with our prefix whose creator is dead (SIGKILL, crash); return their names."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    stale = [n for n in names if (m := _OURS.match(n)) and not _pid_alive(int(m.group(1)))]
    for n in stale:
        _run("ip", "netns", "del", n, check=False)
    return stale


def enter_netns(name: str) -> None:
    """Move the calling thread (and the threads and sockets it creates later) into namespace ``name``.

    setns(2) changes only the calling thread, and a socket stays in the namespace it was made in: call
    this first thing in a fresh process, before torch or Gloo start threads or open sockets.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into network namespace {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


class EmulatedNetwork:
    """``num_hosts`` namespaces on one bridge, each with a ``rate_bps`` (bits/s) full-duplex NIC.

    Use as a context manager; the namespaces (and with them the veths and the bridge) are deleted on
    exit, on an exception, at interpreter exit, and on SIGINT/SIGTERM while the context is active.
    """

    def __init__(self, num_hosts: int, rate_bps: float, *, burst_bytes: int | None = None):
        if not (isinstance(num_hosts, int) and 1 <= num_hosts <= 250):
            raise AdaqpInputError(f"an emulated network has 1 to 250 hosts, got {num_hosts!r}")
        if not rate_bps > 0:
            raise AdaqpInputError(f"link rate must be positive, got {rate_bps!r} bit/s")
        self.rate_bps = float(rate_bps)
        self.burst_bytes, self.limit_bytes = tbf_params(self.rate_bps, burst_bytes)
        self.ifname = IFNAME
        self._pid = os.getpid()
        n = next(_counter)
        base = f"{PREFIX}{self._pid}-{n}"
        self.switch = f"{base}-sw"
        self.namespaces = [f"{base}-h{i}" for i in range(num_hosts)]
        # Each instance's bridge lives in its own namespace, so equal subnets could not collide;
        # distinct ones (from pid and counter) just keep captures and error messages unambiguous.
        idx = (self._pid * 16 + n) % (128 * 256)
        self.subnet = f"10.{100 + idx // 256}.{idx % 256}"
        self.addresses = [f"{self.subnet}.{i + 1}" for i in range(num_hosts)]
        self._created: list[str] = []
        self._prev_handlers: dict[int, object] = {}

    # ---- life cycle ------------------------------------------------------------------------
    def __enter__(self) -> "EmulatedNetwork":
        check_available()
        sweep_stale()
        atexit.register(self.close)
        self._install_signal_handlers()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Delete everything this instance created; idempotent, and a no-op in a forked child."""
        if os.getpid() != self._pid:
            return  # a forked child must not tear down its parent's network
        created, self._created = self._created, []
        for ns in reversed(created):
            _run("ip", "netns", "del", ns, check=False)
        self._restore_signal_handlers()
        atexit.unregister(self.close)

    # ---- building --------------------------------------------------------------------------
    def _add_netns(self, name: str) -> None:
        _run("ip", "netns", "add", name)
        self._created.append(name)  # recorded at once, so a failure later still removes it

    def _tbf(self, ns: str, dev: str) -> None:
        _run("tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", f"{int(self.rate_bps)}bit",
             "burst", str(self.burst_bytes), "limit", str(self.limit_bytes))

    def _build(self) -> None:
        sw = self.switch
        self._add_netns(sw)
        _run("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", sw, "link", "set", "br0", "up")
        for i, (ns, addr) in enumerate(zip(self.namespaces, self.addresses)):
            self._add_netns(ns)
            port = f"h{i}"  # the switch port; names are per namespace, so nothing can clash
            _run("ip", "link", "add", IFNAME, "netns", ns, "type", "veth", "peer", "name", port, "netns", sw)
            _run("ip", "-n", sw, "link", "set", port, "master", "br0")
            _run("ip", "-n", sw, "link", "set", port, "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", IFNAME)
            _run("ip", "-n", ns, "link", "set", IFNAME, "up")
            self._tbf(ns, IFNAME)  # upload: the host's send side
            self._tbf(sw, port)  # download: what the switch delivers to the host

    def qdiscs(self) -> dict[str, str]:
        """``tc qdisc show`` of every namespace, for checks and reports."""
        return {ns: _run("tc", "-n", ns, "qdisc", "show").stdout for ns in [self.switch, *self.namespaces]}

    # ---- signals ---------------------------------------------------------------------------
    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # Python only lets the main thread set handlers; atexit and __exit__ still apply
        for sig in (signal.SIGINT, signal.SIGTERM):
            # an ignored signal stays ignored (a shell's background job ignores SIGINT): tearing the
            # links down under ranks that go on running would only make them hang
            if signal.getsignal(sig) != signal.SIG_IGN:
                self._prev_handlers[sig] = signal.signal(sig, self._on_signal)

    def _restore_signal_handlers(self) -> None:
        prev, self._prev_handlers = self._prev_handlers, {}
        for sig, handler in prev.items():
            if signal.getsignal(sig) == self._on_signal:  # nested instances: only undo our own
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame) -> None:
        """Clean up first, then behave as the handler we replaced would have."""
        prev = self._prev_handlers.get(signum, signal.SIG_DFL)
        self.close()
        if callable(prev):
            prev(signum, frame)  # SIGINT's default handler raises KeyboardInterrupt
        elif prev == signal.SIG_DFL:
            # An exception, not a re-sent signal: finally blocks run, so a launcher still
            # terminates its rank processes. 128 + signal number is the shell's convention.
            raise SystemExit(128 + signum)


# ---- link probe --------------------------------------------------------------------------
_PROBE_PORT = 47_123


def _probe_receiver(ns: str, addr: str, nbytes: int, conn) -> None:
    """Accept one stream, time it from the end of the first read, send back (bytes, seconds)."""
    import socket
    import time

    enter_netns(ns)
    with socket.create_server((addr, _PROBE_PORT)) as srv:
        conn.send("ready")
        srv.settimeout(30)
        peer, _ = srv.accept()
        with peer:
            first = peer.recv(1 << 20)  # timing starts after it: connection set-up is not the link
            t0, got = time.perf_counter(), 0
            while len(first) + got < nbytes and (b := peer.recv(1 << 20)):
                got += len(b)
            conn.send((got, time.perf_counter() - t0))


def _probe_sender(ns: str, addr: str, nbytes: int) -> None:
    import socket

    enter_netns(ns)
    with socket.create_connection((addr, _PROBE_PORT), timeout=30) as s:
        s.sendall(bytes(nbytes))


def measure_link(net: EmulatedNetwork, src: int = 0, dst: int = 1, nbytes: int | None = None,
                 timeout_s: float = 60.0) -> float:
    """Achieved bytes/s of one TCP stream from host ``src`` to host ``dst`` (payload, not frames).

    The default size is ~1 s of traffic at the configured rate (2 MB to 256 MB). Expect ~95 % of
    rate/8: tbf counts Ethernet, IP and TCP headers, the result only payload.
    """
    import multiprocessing as mp

    nbytes = nbytes or int(min(max(net.rate_bps / 8, 2e6), 256e6))
    ctx = mp.get_context("spawn")  # a fresh interpreter, so setns happens before any thread exists
    recv, send = ctx.Pipe(duplex=False)
    rx = ctx.Process(target=_probe_receiver, args=(net.namespaces[dst], net.addresses[dst], nbytes, send))
    tx = ctx.Process(target=_probe_sender, args=(net.namespaces[src], net.addresses[dst], nbytes))
    rx.start()
    try:
        if not recv.poll(timeout_s) or recv.recv() != "ready":
            raise RuntimeError("link probe: the receiver did not start")
        tx.start()
        if not recv.poll(timeout_s):
            raise RuntimeError(f"link probe: no result within {timeout_s:.0f} s")
        got, seconds = recv.recv()
        return got / seconds
    finally:
        for p in (tx, rx):
            if p.pid is not None:
                p.join(timeout=5)
                if p.is_alive():
                    p.kill()
                    p.join()
