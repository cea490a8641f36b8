"""The :class:`ClusterSpec`: which machines a plan is simulated, costed or run on.

A cluster is ``nodes`` x ``devices_per_node`` devices, each shared by ``ranks_per_device`` ranks
(rank ``i`` lives on device ``i // ranks_per_device``, node ``i // ranks_per_node``). Ranks on one
node talk over ``intra_link`` (PCIe, NVLink or loopback); nodes talk over ``network``.

Specs come from YAML with units (``bw: 25gbit``, ``latency: 5us``); in Python and in files written
back, bandwidths are bytes/s and latencies seconds. Network convention: ``bit``/``bps``/``b/s`` are
bits, ``B``/``Bps``/``B/s``/``byte`` are bytes; k/M/G/T are powers of 1000, Ki/Mi/Gi/Ti of 1024.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from adaqp.errors import AdaqpInputError, require
from adaqp.io import write_text

__all__ = ["ClusterSpec", "Link", "Network", "parse_bandwidth_Bps", "parse_latency_s", "tbf_params",
           "LINK_KINDS", "TRANSPORTS"]

LINK_KINDS = ("pcie", "nvlink", "loopback")
TRANSPORTS = ("nccl", "gloo-staged", "gloo-cpu")
# Order-of-magnitude defaults used only when a spec gives no latency; fit real values from
# measurements (hardware profiles) rather than trusting these.
DEFAULT_LATENCY_S = {"pcie": 5e-6, "nvlink": 3e-6, "loopback": 20e-6, "network": 20e-6}
# Gloo over loopback, per rank: 1.58 GB/s in cpu-2core's all-to-all, 2.3-2.8 GB/s in the host-staged
# exchange of h200-measured (costmodel/profiles); 1 GB/s is a round figure below both.
LOOPBACK_BW_Bps = 1e9
# The token bucket of an emulated link (``tc tbf``, :func:`tbf_params`)
_MTU_FRAME = 1514  # bytes tbf counts for one full Ethernet frame (MTU 1500 + 14 header)
_HZ_TICK_S = 0.004  # 1/HZ of a HZ=250 kernel, the coarsest common timer tick
_QUEUE_S = 0.05  # queueing tbf may add before it drops: ~50 ms, like a switch buffer
# Theoretical PCIe bandwidth per lane and direction after line encoding, by generation.
PCIE_LANE_Bps = {1: 0.25e9, 2: 0.5e9, 3: 0.985e9, 4: 1.969e9, 5: 3.938e9, 6: 7.563e9}

_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S*?)\s*$")
_PREFIX = re.compile(r"^([kKmMgGtT]i?)?(.*)$")
_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12,
          "ki": 2.0**10, "mi": 2.0**20, "gi": 2.0**30, "ti": 2.0**40}
_BIT_UNITS = ("bit", "bits", "bit/s", "bits/s", "bps", "b/s")  # lower-case b only for bps, b/s
_BYTE_UNITS = ("B", "B/s", "Bps", "byte", "bytes", "byte/s", "bytes/s")
_TIME_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9}


def _split(value: Any) -> tuple[float, str] | None:
    """(number, unit) of a YAML scalar; None when it is neither a number nor 'number unit'."""
    if isinstance(value, bool):  # YAML 'yes' is True, and True is an int: refuse it
        return None
    if isinstance(value, (int, float)):
        return float(value), ""
    m = _NUMBER.match(value) if isinstance(value, str) else None
    return (float(m.group(1)), m.group(2)) if m else None


def _bytes_per_unit(unit: str) -> float | None:
    """Bytes/s per unit of bandwidth, or None for an unknown unit."""
    prefix, base = _PREFIX.match(unit).groups()
    if base == "" and prefix:  # "16G" alone says neither bits nor bytes
        return None
    scale = _SCALE[(prefix or "").lower()]
    if base.lower() in _BIT_UNITS[:4] or base in _BIT_UNITS[4:]:
        return scale / 8
    if base in _BYTE_UNITS or base.lower() in _BYTE_UNITS[3:] or (base == "" and not prefix):
        return scale
    return None


def parse_bandwidth_Bps(value: Any, field: str = "bandwidth") -> float:
    """Bytes/s from ``25gbit``, ``25Gbps``, ``100mbit``, ``16GB/s``, ``55 GB/s`` or a plain number."""
    parts = _split(value)
    per = _bytes_per_unit(parts[1]) if parts else None
    require(per is not None and math.isfinite(parts[0]),
            f"{field}: cannot parse {value!r} as a bandwidth (e.g. 25gbit, 16GB/s)")
    bw = parts[0] * per
    require(bw > 0, f"{field}: bandwidth must be positive, got {value!r}")
    return bw


def parse_latency_s(value: Any, field: str = "latency") -> float:
    """Seconds from ``5us``, ``0.5ms``, ``100ns``, ``2e-6`` or a plain number."""
    parts = _split(value)
    ok = parts is not None and parts[1] in _TIME_UNITS and math.isfinite(parts[0])
    require(ok, f"{field}: cannot parse {value!r} as a latency (e.g. 5us, 0.5ms, 2e-6)")
    lat = parts[0] * _TIME_UNITS[parts[1]]
    require(lat >= 0, f"{field}: latency must not be negative, got {value!r}")
    return lat


def _pos_int(value: Any, field: str) -> int:
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1
    require(ok, f"{field} must be a positive integer, got {value!r}")
    return int(value)


def _name(value: Any, field: str) -> str:
    ok = isinstance(value, str) and value != "" and value == value.strip()
    require(ok, f"{field} must be a non-empty string without spaces around it, got {value!r}")
    return value


def _fix(obj: Any, **values: Any) -> None:
    for k, v in values.items():  # normalise fields of a frozen dataclass in __post_init__
        object.__setattr__(obj, k, v)


@dataclass(frozen=True)
class Link:
    """How ranks on one node reach each other. PCIe bandwidth defaults to ``pcie_gen`` x ``lanes``."""

    kind: str
    bw_Bps: float | None = None
    latency_s: float | None = None
    pcie_gen: int | None = None
    lanes: int | None = None

    def __post_init__(self) -> None:
        require(self.kind in LINK_KINDS, f"intra_link.kind must be one of {', '.join(LINK_KINDS)}, "
                                         f"got {self.kind!r}")
        for f, ok in (("pcie_gen", tuple(PCIE_LANE_Bps)), ("lanes", (1, 2, 4, 8, 16))):
            v = getattr(self, f)
            require(v is None or self.kind == "pcie", f"intra_link.{f} is only for kind pcie")
            require(v is None or (v in ok and not isinstance(v, bool)),
                    f"intra_link.{f} must be one of {', '.join(map(str, ok))}, got {v!r}")
            _fix(self, **{f: None if v is None else int(v)})
        bw = self.bw_Bps
        if bw is None:
            require(self.kind == "pcie" and self.pcie_gen and self.lanes,
                    "intra_link.bw is required (or, for pcie, pcie_gen and lanes)")
            bw = PCIE_LANE_Bps[self.pcie_gen] * self.lanes
        lat = DEFAULT_LATENCY_S[self.kind] if self.latency_s is None else self.latency_s
        _fix(self, bw_Bps=parse_bandwidth_Bps(bw, "intra_link.bw"),
             latency_s=parse_latency_s(lat, "intra_link.latency"))

    def to_dict(self) -> dict[str, Any]:
        d = {"kind": self.kind, "bw": self.bw_Bps, "latency": self.latency_s}
        d.update({k: getattr(self, k) for k in ("pcie_gen", "lanes") if getattr(self, k) is not None})
        return d


def tbf_params(rate_bps: float, burst_bytes: int | None = None) -> tuple[int, int]:
    """(burst, limit) in bytes for a tbf of ``rate_bps`` bits/s (``burst_bytes``: that burst instead).

    burst: at least one timer tick of traffic (rate/HZ, the tc-tbf(8) rule: a smaller bucket cannot
    reach the rate once the qdisc has to wait for a tick) and at least ~10 full frames, so that a TSO
    segment splits without stalling; 16 KiB at 10mbit, 50 kB at 100mbit, 5 MB at 10gbit. A larger
    burst would let longer messages pass at memory speed and hide the link; what this one lets
    through is the emulated cluster's ``network.burst_bytes`` (:meth:`ClusterSpec.emulated`).
    limit: burst plus ~50 ms of traffic at the rate, so TCP sees a buffer, not early drops.
    """
    rate_Bps = rate_bps / 8
    burst = max(int(rate_Bps * _HZ_TICK_S), 16 * 1024, 10 * _MTU_FRAME) if burst_bytes is None else int(burst_bytes)
    return burst, burst + int(rate_Bps * _QUEUE_S)


@dataclass(frozen=True)
class Network:
    """How nodes reach each other: per-node NIC bandwidth, latency, GPUDirect RDMA, oversubscription.

    ``burst_bytes``: the token bucket of a shaped link (``tc tbf``, as on emulated hosts): a NIC
    side that idled passes up to this many bytes as fast as the rest of the path allows before
    ``bw_Bps`` applies; the bucket refills at ``bw_Bps``. 0 (the default) for a physical NIC.

    ``bw_crowded``: ``{n: bytes/s}``, what the NIC carries each way while its node sends to n >= 2
    peers and receives from n at once (measured: an all-to-all of n + 1 nodes); ``bw_Bps`` is the
    measured rate of one flow each way. TCP streams behind a ``tc tbf`` shaper lose rate when a
    link carries several streams out and the acknowledgements of several in (see
    :func:`Network.crowd_factor`). Empty (the default): every flow count gets ``bw_Bps``."""

    bw_Bps: float
    latency_s: float | None = None
    gdr: bool = False
    oversubscription: float = 1.0
    burst_bytes: float = 0.0
    bw_crowded: Mapping[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lat = DEFAULT_LATENCY_S["network"] if self.latency_s is None else self.latency_s
        _fix(self, bw_Bps=parse_bandwidth_Bps(self.bw_Bps, "network.bw"),
             latency_s=parse_latency_s(lat, "network.latency"))
        require(isinstance(self.gdr, bool), f"network.gdr must be true or false, got {self.gdr!r}")
        o = self.oversubscription
        ok = isinstance(o, (int, float)) and not isinstance(o, bool) and math.isfinite(o) and o >= 1
        require(ok, f"network.oversubscription must be a number >= 1, got {o!r}")
        _fix(self, oversubscription=float(o))
        b = self.burst_bytes
        ok = isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) and b >= 0
        require(ok, f"network.burst_bytes must be a number of bytes >= 0, got {b!r}")
        _fix(self, burst_bytes=float(b))
        c = self.bw_crowded
        require(isinstance(c, Mapping), f"network.bw_crowded must map a flow count to a bandwidth, got {c!r}")
        crowded = {}
        for n, bw in c.items():
            n = int(n) if isinstance(n, str) and n.isdigit() else n  # JSON keys are strings
            ok = isinstance(n, int) and not isinstance(n, bool) and n >= 2
            require(ok, f"network.bw_crowded: flow counts must be integers >= 2, got {n!r}")
            crowded[n] = parse_bandwidth_Bps(bw, f"network.bw_crowded[{n}]")
        _fix(self, bw_crowded=dict(sorted(crowded.items())))

    def crowd_factor(self, n_out, n_in) -> np.ndarray:
        """The share of ``bw_Bps`` a NIC carries each way while its node has ``n_out`` flows out
        and ``n_in`` in (arrays or numbers): 1 below two each way; else ``bw_crowded`` at
        n = min(n_out, n_in), the largest measured count beyond the table, interpolated between
        1 (one flow) and the table's counts within it.

        Why the smaller count: on emulated hosts behind 100 Mbit/s shapers, 1.25 MB per flow, one
        node sending to two (or three) at once, or receiving from them, kept the full rate, as did
        a ring (one flow out, one in, each node); every node sending to and receiving from two
        (an all-to-all of 3) took 1.19-1.30x the full rate's time, of 4: 1.29x (docs/cost-model.md)."""
        n = np.minimum(np.asarray(n_out, dtype=np.float64), np.asarray(n_in, dtype=np.float64))
        if not self.bw_crowded:
            return np.ones_like(n)
        xs = [1.0] + [float(k) for k in self.bw_crowded]
        ys = [1.0] + [v / self.bw_Bps for v in self.bw_crowded.values()]
        return np.where(n < 2, 1.0, np.interp(n, xs, ys))

    def to_dict(self) -> dict[str, Any]:
        d = {"bw": self.bw_Bps, "latency": self.latency_s, "gdr": self.gdr,
             "oversubscription": self.oversubscription}
        if self.bw_crowded:
            d["bw_crowded"] = {int(k): float(v) for k, v in self.bw_crowded.items()}
        return {**d, "burst_bytes": self.burst_bytes} if self.burst_bytes else d


_LINK_KEYS = {"kind": "kind", "bw": "bw_Bps", "latency": "latency_s", "pcie_gen": "pcie_gen",
              "lanes": "lanes"}
_NET_KEYS = {"bw": "bw_Bps", "latency": "latency_s", "gdr": "gdr",
             "oversubscription": "oversubscription", "burst_bytes": "burst_bytes",
             "bw_crowded": "bw_crowded"}
_TOP_KEYS = ("name", "nodes", "devices_per_node", "ranks_per_device", "device", "profile",
             "transport", "shared_host", "intra_link", "network")


@dataclass(frozen=True)
class ClusterSpec:
    """A cluster, validated on construction. ``profile`` defaults to the device name; ``transport``
    to ``gloo-cpu`` for CPUs, else ``nccl`` (one rank per GPU) or ``gloo-staged`` (shared GPUs)."""

    name: str
    nodes: int
    devices_per_node: int
    device: str
    intra_link: Link
    network: Network | None = None
    ranks_per_device: int = 1
    profile: str = ""
    transport: str = ""
    # every node is emulated on one physical machine (network namespaces): all ranks share its
    # cores, so compute contends as if the ranks shared one CPU device
    shared_host: bool = False

    def __post_init__(self) -> None:
        _name(self.name, "name")
        _fix(self, **{f: _pos_int(getattr(self, f), f)
                      for f in ("nodes", "devices_per_node", "ranks_per_device")})
        _fix(self, device=_name(self.device, "device").lower())
        require(isinstance(self.shared_host, bool), f"shared_host must be true or false, got {self.shared_host!r}")
        _fix(self, profile=self.profile or self.device)
        _name(self.profile, "profile")
        require(isinstance(self.intra_link, Link), "intra_link must be a Link")
        require(isinstance(self.network, Network) or (self.network is None and self.nodes == 1),
                "network is required when nodes > 1")
        cpu = self.device == "cpu"
        _fix(self, transport=self.transport or ("gloo-cpu" if cpu else
                                                "nccl" if self.ranks_per_device == 1 else "gloo-staged"))
        self._check_combination(cpu)

    def _check_combination(self, cpu: bool) -> None:
        t = self.transport
        require(t in TRANSPORTS, f"transport must be one of {', '.join(TRANSPORTS)}, got {t!r}")
        require(cpu == (t == "gloo-cpu"), f"transport {t} does not fit device {self.device!r}: "
                                          "CPU ranks use gloo-cpu, GPU ranks nccl or gloo-staged")
        require(t != "nccl" or self.ranks_per_device == 1,
                "ranks_per_device: NCCL refuses two ranks on one GPU; use transport gloo-staged")
        require(not cpu or self.intra_link.kind == "loopback",
                f"intra_link.kind: CPU ranks on one node talk over loopback, not {self.intra_link.kind}")
        require(self.network is None or not self.network.gdr or t == "nccl",
                f"network.gdr: GPUDirect RDMA needs transport nccl, not {t}")
        # a bucket passes bytes as fast as the rest of the path: Gloo's endpoints bound it
        require(self.network is None or not self.network.burst_bytes or t != "nccl",
                "network.burst_bytes: a token bucket is modelled for the gloo transports (emulated hosts), not nccl")

    # ---- derived -------------------------------------------------------------------------
    @property
    def num_devices(self) -> int:
        return self.nodes * self.devices_per_node

    @property
    def cpu_sharing(self) -> int:
        """Ranks whose compute contends for one CPU (one node's device, or the whole emulated host)."""
        return self.num_ranks if self.shared_host else self.ranks_per_device

    @property
    def ranks_per_node(self) -> int:
        return self.devices_per_node * self.ranks_per_device

    @property
    def num_ranks(self) -> int:
        return self.nodes * self.ranks_per_node

    @property
    def world_size(self) -> int:
        return self.num_ranks

    def _rank(self, rank: int) -> int:
        require(0 <= int(rank) < self.num_ranks, f"rank {rank} out of range [0, {self.num_ranks})")
        return int(rank)

    def rank_to_node(self, rank: int) -> int:
        return self._rank(rank) // self.ranks_per_node

    def rank_to_device(self, rank: int) -> int:
        """Global device index (``node * devices_per_node + local device``) of ``rank``."""
        return self._rank(rank) // self.ranks_per_device

    # ---- dicts and files -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in _TOP_KEYS[:8]}
        d["intra_link"] = self.intra_link.to_dict()
        if self.network is not None:
            d["network"] = self.network.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "cluster") -> "ClusterSpec":
        """Build from a plain dict (units allowed); every error names ``source`` and the field."""
        try:
            _keys(d, _TOP_KEYS, ("nodes", "devices_per_node", "device", "intra_link"), "")
            kw = {k: v for k, v in d.items() if k not in ("intra_link", "network")}
            kw.setdefault("name", Path(source).stem or "cluster")
            _keys(d["intra_link"], _LINK_KEYS, ("kind",), "intra_link.")
            kw["intra_link"] = Link(**{_LINK_KEYS[k]: v for k, v in d["intra_link"].items()})
            if d.get("network") is not None:
                _keys(d["network"], _NET_KEYS, ("bw",), "network.")
                kw["network"] = Network(**{_NET_KEYS[k]: v for k, v in d["network"].items()})
            return cls(**kw)
        except AdaqpInputError as e:
            raise AdaqpInputError(f"{source}: {e}") from None

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "ClusterSpec":
        p = Path(path)
        require(p.is_file(), f"file not found: {p}")
        try:
            d = yaml.safe_load(p.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise AdaqpInputError(f"{p}: not valid YAML: {' '.join(str(e).split())}") from None
        return cls.from_dict(d, source=str(p))

    def to_yaml(self, path: str | os.PathLike) -> Path:
        """Write the spec atomically (temporary file in the same folder, then rename)."""
        text = "# adaqp cluster spec: bandwidths in bytes/s, latencies in seconds\n"
        text += yaml.safe_dump(self.to_dict(), sort_keys=False)
        return write_text(path, text)

    def with_ranks(self, num_ranks: int) -> "ClusterSpec":
        """The same kind of cluster resized to ``num_ranks`` ranks: more ranks per device on one
        shared device, more devices on one node, otherwise more nodes of the same layout."""
        from dataclasses import replace

        n = _pos_int(num_ranks, "num_ranks")
        if n == self.num_ranks:
            return self
        if self.nodes == 1 and self.devices_per_node == 1:
            return replace(self, ranks_per_device=n)
        if self.nodes == 1:
            require(n % self.ranks_per_device == 0, f"cluster {self.name!r}: {n} ranks is not a "
                                                    f"multiple of {self.ranks_per_device} ranks per device")
            return replace(self, devices_per_node=n // self.ranks_per_device)
        if n % self.ranks_per_node == 0:  # more (or fewer) nodes of the same layout
            return replace(self, nodes=n // self.ranks_per_node)
        per_node = self.nodes * self.ranks_per_device  # same nodes, fewer devices each
        require(n % per_node == 0, f"cluster {self.name!r}: {n} ranks is neither a multiple of its "
                                   f"{self.ranks_per_node} ranks per node nor of its {self.nodes} nodes")
        return replace(self, devices_per_node=n // per_node)

    @classmethod
    def local_cpu(cls, num_ranks: int, link_bw_Bps: float | str | None = None) -> "ClusterSpec":
        """This machine: ``num_ranks`` CPU ranks over loopback, or, with ``link_bw_Bps``, one
        emulated node per rank joined by shaped links (network namespaces + ``tc``). The emulated
        nodes still share this host's cores; its measured profile carries that slowdown."""
        n = _pos_int(num_ranks, "num_ranks")
        loop = Link("loopback", LOOPBACK_BW_Bps)
        if link_bw_Bps is None:
            return cls("local-cpu", 1, 1, "cpu", loop, ranks_per_device=n)
        return cls.emulated(n, parse_bandwidth_Bps(link_bw_Bps, "link_bw_Bps"))

    @classmethod
    def shared_gpu(cls, num_ranks: int, profile: str = "h200-measured", device: str = "h200") -> "ClusterSpec":
        """``num_ranks`` ranks time-sharing one GPU, exchanging through pinned host buffers and
        Gloo (``gloo-staged``): what ``adaqp train --device cuda --nprocs k`` runs on a one-GPU
        machine. Equal to the bundled ``h200-shared-2`` / ``-4`` specs for those defaults.

        ``profile``: a bundled name or the file ``adaqp profile --device cuda`` wrote (default: the
        bundled ``h200-measured``, measured on an H200); a measured one carries what the model needs
        for this case (its pinned D2H/H2D copies, which take
        precedence over intra_link, the Gloo exchange with k ranks on the host, the sync floors).
        intra_link is the PCIe Gen5 x16 host link at the pinned-copy rate measured on the H200."""
        n = _pos_int(num_ranks, "num_ranks")
        pcie = Link("pcie", "55GB/s", "10us", pcie_gen=5, lanes=16)  # parsed as the YAML specs are
        return cls(f"{device}-shared-{n}", 1, 1, device, pcie, ranks_per_device=n, profile=str(profile),
                   transport="gloo-staged")

    @classmethod
    def emulated(cls, num_ranks: int, link_bw_Bps: float, latency_s: float = 50e-6) -> "ClusterSpec":
        """What ``adaqp train --link`` runs on (``adaqp.runtime.emulate``): one emulated host per
        rank, each with a full-duplex NIC of ``link_bw_Bps`` (bytes/s) per direction on one switch.

        Equal to the bundled ``local-cpu-100mbit`` / ``local-cpu-1gbit`` specs at those rates: the
        profile is this machine's measured ``cpu-2core`` (the hosts share its cores); latency 50 us
        stands for the veth/bridge hop and TCP path (tbf adds none); intra_link is unused (one rank
        per host) but required, so it is local-cpu.yaml's measured loopback. ``burst_bytes`` is the
        token bucket the emulator gives each tbf (:func:`tbf_params`).
        """
        n = _pos_int(num_ranks, "num_ranks")
        bw = parse_bandwidth_Bps(link_bw_Bps, "link_bw_Bps")
        bits = bw * 8
        rate = f"{bits / 1e9:g}gbit" if bits >= 1e9 and bits % 1e9 == 0 else f"{bits / 1e6:g}mbit"
        loop = Link("loopback", 1.1e9, 250e-6)  # local-cpu.yaml: measured Gloo all_to_all here
        net = Network(bw, latency_s, gdr=False, burst_bytes=tbf_params(bits)[0])
        return cls(f"local-cpu-{rate}", n, 1, "cpu", loop, net,
                   profile="cpu-2core", transport="gloo-cpu", shared_host=True)


def _keys(d: Any, allowed, required, prefix: str) -> None:
    """Refuse a non-mapping, unknown fields and missing fields, naming them with their path."""
    require(isinstance(d, Mapping), f"{prefix.rstrip('.') or 'the spec'} must be a mapping, "
                                    f"got {type(d).__name__}")
    unknown = [str(k) for k in d if k not in allowed]
    require(not unknown, f"unknown field {', '.join(prefix + k for k in unknown)} "
                         f"(known: {', '.join(prefix + k for k in allowed)})")
    missing = [k for k in required if k not in d]
    require(not missing, f"missing field {', '.join(prefix + k for k in missing)}")
