"""The :class:`BitPlan`, read by solver, simulator, cost model and runtime (``Schedule`` is re-exported).

A :class:`BitPlan` gives every message row of every exchange a bit-width. A *channel* is one
(layer, direction, sender, receiver). Forward, layer ``l`` in ``0..L-1``: the rows of layer l's
input travel ``s -> r``. Backward, layers ``1..L-1`` only (the input layer needs no gradient):
the gradients of those halo rows flow back, so forward channel ``(s, r)`` with ``n`` rows has the
backward twin ``(r, s)`` with the same ``n`` rows. Within a channel, rows are in the HaloPlan's
send order for that pair. Row counts come from ``pair_rows[s, r]`` (rows s sends r forward),
so this module never imports the halo module.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Iterator, Mapping

import numpy as np

from adaqp.errors import AdaqpInputError, require
from adaqp.io import read_json, read_npz, write_json, write_npz
from adaqp.wire import ALL_BITS, check_bits, row_nbytes

from adaqp.schedule import (ADAQP, OVERLAP, QUANT, VANILLA, Schedule,  # noqa: F401  (re-export)
                            register_schedule, schedule_names)

__all__ = ["Schedule", "register_schedule", "schedule_names", "VANILLA", "QUANT", "OVERLAP",
           "ADAQP", "BitPlan", "DIRECTIONS", "expected_channels"]


# ---- BitPlan -----------------------------------------------------------------------------------
Key = tuple  # (layer: int, direction: str, sender: int, receiver: int)
DIRECTIONS = ("fwd", "bwd")
FORMAT, FORMAT_VERSION = "adaqp.bitplan", 1
_EMPTY = np.zeros(0, dtype=np.int8)
_EMPTY.flags.writeable = False


def _name(key: Key) -> str:
    return f"layer {key[0]} {key[1]} {key[2]}->{key[3]}"


def _sort_key(key: Key):
    return key[0], DIRECTIONS.index(key[1]), key[2], key[3]


def _as_pair_rows(pair_rows) -> np.ndarray:
    """Check a [P, P] matrix of non-negative row counts with a zero diagonal (no self-sends)."""
    a = np.asarray(pair_rows)
    require(a.ndim == 2 and a.shape[0] == a.shape[1] and a.shape[0] >= 1,
            f"pair_rows must be a square [P, P] matrix, got shape {list(a.shape)}")
    require(a.dtype.kind in "iu", f"pair_rows must hold integers, got dtype {a.dtype}")
    a = a.astype(np.int64)
    require(bool((a >= 0).all()), "pair_rows must be non-negative")
    require(not np.diagonal(a).any(), "pair_rows must have a zero diagonal (no self-sends)")
    return a


def expected_channels(pair_rows, num_layers: int) -> dict[Key, int]:
    """Every channel a HaloPlan with these pair rows exchanges, in canonical order -> rows."""
    pr = _as_pair_rows(pair_rows)
    out: dict[Key, int] = {}
    for s, r in zip(*np.nonzero(pr)):
        n = int(pr[s, r])
        for layer in range(num_layers):
            out[(layer, "fwd", int(s), int(r))] = n
            if layer >= 1:
                out[(layer, "bwd", int(r), int(s))] = n
    return {k: out[k] for k in sorted(out, key=_sort_key)}


def _widths_array(values, name: str) -> np.ndarray:
    """Bit-widths as int8, refusing unsupported ones *before* the cast (264 must not become 8)."""
    a = np.asarray(values)
    require(a.ndim == 1, f"{name}: bit-widths must be a 1-D array, got shape {list(a.shape)}")
    require(a.size == 0 or a.dtype.kind in "iu", f"{name}: bit-widths must be integers, not {a.dtype}")
    bad = a[~np.isin(a, ALL_BITS)].tolist()
    require(not bad, f"{name}: bit-width {bad[:1] and bad[0]} not supported; choose from {ALL_BITS}")
    return a.astype(np.int8)


def _expand_groups(spec, n: int, name: str) -> np.ndarray:
    """Per-row widths of one channel from ``[(rows, bits), ...]``; ``rows`` is a group size
    (consecutive rows in send order) or an array of row indices (every row exactly once)."""
    require(len(spec) > 0, f"{name}: empty group list")
    rows, widths = zip(*spec)
    widths = _widths_array(list(widths), name)
    if all(isinstance(x, (int, np.integer)) for x in rows):
        sizes = np.asarray(rows, dtype=np.int64)
        require(bool((sizes >= 0).all()) and sizes.sum() == n,
                f"{name}: group sizes add up to {int(sizes.sum())} but the channel has {n} rows")
        return np.repeat(widths, sizes)
    require(not any(isinstance(x, (int, np.integer)) for x in rows),
            f"{name}: give groups as all sizes or all index arrays, not a mix")
    idx = [np.asarray(x, dtype=np.int64).ravel() for x in rows]
    flat = np.concatenate(idx)
    ok = flat.size == n and (n == 0 or (flat.min() >= 0 and flat.max() < n
                                        and bool((np.bincount(flat, minlength=n) == 1).all())))
    require(ok, f"{name}: group row indices must cover rows 0..{n - 1} exactly once")
    out = np.empty(n, dtype=np.int8)
    out[flat] = np.repeat(widths, [len(i) for i in idx])
    return out


@dataclass(frozen=True, eq=False, repr=False)
class BitPlan:
    """Per-row bit-widths of every channel, checked on construction (every layer must carry the
    channels of layer 0 fwd). ``bits`` maps ``(layer, direction, sender, receiver)`` to read-only
    int8 views into one flat array, in canonical order (layer, fwd before bwd, sender, receiver);
    channels without rows are absent."""

    num_layers: int
    num_parts: int
    bits: Mapping[Key, np.ndarray]

    def __post_init__(self) -> None:
        for f in ("num_layers", "num_parts"):
            object.__setattr__(self, f, _pos_int(getattr(self, f), f"BitPlan.{f}"))
        arrays: dict[Key, np.ndarray] = {}
        for key, values in dict(self.bits).items():
            require(isinstance(key, tuple) and len(key) == 4,
                    f"BitPlan keys are (layer, direction, sender, receiver), got {key!r}")
            key = self._key(*key)
            require(key not in arrays, f"BitPlan: channel {_name(key)} given twice")
            a = _widths_array(values, f"BitPlan {_name(key)}")
            if a.size:
                arrays[key] = a
        keys = sorted(arrays, key=_sort_key)
        flat = np.concatenate([arrays[k] for k in keys]) if keys else _EMPTY.copy()
        offsets = np.concatenate([[0], np.cumsum([arrays[k].size for k in keys])]).astype(np.int64)
        flat.flags.writeable = False
        views = {k: flat[offsets[i]:offsets[i + 1]] for i, k in enumerate(keys)}
        # Counts of rows per width (in ALL_BITS order) make nbytes/histogram O(1) per channel.
        counts = {k: np.bincount(v, minlength=33)[list(ALL_BITS)] for k, v in views.items()}
        for name, value in (("bits", MappingProxyType(views)), ("_flat", flat), ("_counts", counts)):
            object.__setattr__(self, name, value)
        self._check(self.pair_rows, "layer 0 fwd sends")

    # ---- construction --------------------------------------------------------------------
    @classmethod
    def uniform(cls, pair_rows, num_layers: int, bits: int) -> "BitPlan":
        """Every row of every channel at one width (8 bits for the first cycle, 32 for vanilla)."""
        b = check_bits(bits)
        chans = expected_channels(pair_rows, num_layers)
        return cls(num_layers, _as_pair_rows(pair_rows).shape[0],
                   {k: np.full(n, b, dtype=np.int8) for k, n in chans.items()})

    @classmethod
    def from_groups(cls, pair_rows, num_layers: int, groups: Mapping,
                    default_bits: int | None = None) -> "BitPlan":
        """Build from the solver's groups: ``groups[(layer, dir, s, r)]`` is one width for the whole
        channel or a list ``[(rows, bits), ...]`` (see :func:`_expand_groups`). Channels absent from
        ``groups`` get ``default_bits``; without it every channel must be given."""
        chans = expected_channels(pair_rows, num_layers)
        given = {(int(k[0]), str(k[1]), int(k[2]), int(k[3])): v for k, v in groups.items()}
        for key in given:
            require(key in chans, f"groups given for {_name(key)}, which the HaloPlan does not send")
        out = {}
        for key, n in chans.items():
            spec = given.get(key, default_bits)
            require(spec is not None, f"no bit-widths for {_name(key)} ({n} rows) and no default_bits")
            if isinstance(spec, (int, np.integer)):
                out[key] = np.full(n, check_bits(spec), dtype=np.int8)
            else:
                out[key] = _expand_groups(spec, n, _name(key))
        return cls(num_layers, _as_pair_rows(pair_rows).shape[0], out)

    # ---- access --------------------------------------------------------------------------
    def _exchange(self, layer, direction) -> tuple[int, str]:
        """Normalise and range-check (layer, direction); a bad one is an AdaqpInputError."""
        require(direction in DIRECTIONS, f"direction must be 'fwd' or 'bwd', got {direction!r}")
        layer = int(layer)
        require(0 <= layer < self.num_layers, f"layer {layer} out of range [0, {self.num_layers})")
        require(direction == "fwd" or layer >= 1, "layer 0 has no bwd exchange (input layer)")
        return layer, direction

    def _key(self, layer, direction, sender, receiver) -> Key:
        layer, direction = self._exchange(layer, direction)
        s, r, P = int(sender), int(receiver), self.num_parts
        require(0 <= s < P and 0 <= r < P and s != r, f"channel {s}->{r} invalid for {P} parts")
        return layer, direction, s, r

    def channel(self, layer: int, direction: str, sender: int, receiver: int) -> np.ndarray:
        """Read-only int8 widths of one channel, in send order (empty if the pair sends nothing)."""
        return self.bits.get(self._key(layer, direction, sender, receiver), _EMPTY)

    def channels(self) -> Iterator[Key]:
        """Keys of the channels that carry rows, in canonical order."""
        return iter(self.bits)

    def exchanges(self) -> tuple[tuple[int, str], ...]:
        """Every (layer, direction) that exchanges messages: fwd 0..L-1, bwd 1..L-1."""
        return tuple((l, d) for l in range(self.num_layers) for d in DIRECTIONS
                     if d == "fwd" or l >= 1)

    @property
    def pair_rows(self) -> np.ndarray:
        """[P, P] forward row counts implied by the plan (layer 0 fwd)."""
        pr = np.zeros((self.num_parts, self.num_parts), dtype=np.int64)
        for (layer, _, s, r), v in self.bits.items():
            if layer == 0:
                pr[s, r] = v.size
        return pr

    @property
    def total_rows(self) -> int:
        return int(self._flat.size)

    # ---- sizes and summaries -------------------------------------------------------------
    def nbytes(self, layer: int, direction: str, sender: int, receiver: int, width: int) -> int:
        """Bytes on the wire of one channel whose rows have ``width`` features."""
        key = self._key(layer, direction, sender, receiver)
        counts = self._counts.get(key)
        return 0 if counts is None else int(counts @ _row_bytes(width))

    def pair_nbytes(self, layer: int, direction: str, width: int) -> np.ndarray:
        """[P, P] int64 bytes sent s -> r in one exchange (layer, direction)."""
        ex, per_row = self._exchange(layer, direction), _row_bytes(width)
        out = np.zeros((self.num_parts, self.num_parts), dtype=np.int64)
        for (l, d, s, r), counts in self._counts.items():
            if (l, d) == ex:
                out[s, r] = counts @ per_row
        return out

    def histogram(self) -> dict[tuple[int, str], dict[int, int]]:
        """Rows per width for every exchange: ``{(layer, dir): {bits: rows}}`` (zeros omitted)."""
        out = {ex: np.zeros(len(ALL_BITS), dtype=np.int64) for ex in self.exchanges()}
        for (l, d, _, _), counts in self._counts.items():
            out[(l, d)] += counts
        return {ex: {b: int(c) for b, c in zip(ALL_BITS, cs) if c} for ex, cs in out.items()}

    def is_uniform(self) -> bool:
        """True when every row of the plan has the same width (or there are no rows)."""
        return np.unique(self._flat).size <= 1

    # ---- checks and equality -------------------------------------------------------------
    def validate(self, pair_rows, num_layers: int) -> "BitPlan":
        """Refuse a plan that does not match the HaloPlan's ``pair_rows`` and the model depth."""
        pr = _as_pair_rows(pair_rows)
        require(int(num_layers) == self.num_layers,
                f"BitPlan has {self.num_layers} layers but the model has {num_layers}")
        require(pr.shape[0] == self.num_parts,
                f"BitPlan is for {self.num_parts} parts but the HaloPlan has {pr.shape[0]}")
        self._check(pr, "the HaloPlan sends")
        return self

    def _check(self, pair_rows: np.ndarray, source: str) -> None:
        want = expected_channels(pair_rows, self.num_layers)
        for key in sorted(set(want) | set(self.bits), key=_sort_key):
            have, n = self.bits.get(key, _EMPTY).size, want.get(key, 0)
            require(have == n, f"BitPlan has {have} rows for {_name(key)} but {source} {n}")

    def equals(self, other: object) -> bool:
        return (isinstance(other, BitPlan) and self.num_layers == other.num_layers
                and self.num_parts == other.num_parts and list(self.bits) == list(other.bits)
                and np.array_equal(self._flat, other._flat))

    def __eq__(self, other: object):
        return self.equals(other) if isinstance(other, BitPlan) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        widths = sorted(int(b) for b in np.unique(self._flat))
        return (f"BitPlan(num_layers={self.num_layers}, num_parts={self.num_parts}, "
                f"channels={len(self.bits)}, rows={self.total_rows}, widths={widths})")

    # ---- files ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``<stem>.npz`` (arrays) then ``<stem>.json`` (meta), each atomically; ``path`` is
        a stem, a ``.json``/``.npz`` name or a folder (then ``bitplan.*`` inside). Returns the json."""
        stem = _stem(path)
        keys = [[l, DIRECTIONS.index(d), s, r] for l, d, s, r in self.bits]
        offsets = np.cumsum([0] + [v.size for v in self.bits.values()], dtype=np.int64)
        arrays = {"keys": np.array(keys, dtype=np.int64).reshape(-1, 4), "offsets": offsets,
                  "bits": self._flat}
        write_npz(f"{stem}.npz", arrays)
        hist = {f"{l}/{d}": {str(b): n for b, n in h.items()} for (l, d), h in self.histogram().items()}
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "num_layers": self.num_layers,
                "num_parts": self.num_parts, "num_channels": len(self.bits),
                "total_rows": self.total_rows, "sha256": _digest(arrays), "histogram": hist}
        return write_json(f"{stem}.json", meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "BitPlan":
        """Read a plan written by :meth:`save`; missing, corrupt or mismatched files are refused."""
        stem = _stem(path)
        jpath, npath = Path(f"{stem}.json"), Path(f"{stem}.npz")
        meta = read_json(jpath)
        require(isinstance(meta, dict) and meta.get("format") == FORMAT,
                f"{jpath}: not a BitPlan file (format {FORMAT!r} expected)")
        require(meta.get("version") == FORMAT_VERSION, f"{jpath}: BitPlan format version "
                f"{meta.get('version')!r} not supported (this adaqp reads {FORMAT_VERSION})")
        arrays = read_npz(npath, required=("keys", "offsets", "bits"))
        require(meta.get("sha256") == _digest(arrays),
                f"{npath} does not match {jpath} (different saves, or the file was altered)")
        keys, offsets, bits = arrays["keys"], arrays["offsets"], arrays["bits"]
        try:  # the digest rules out torn saves; this catches hand-made files that are wrong
            require(len(offsets) == len(keys) + 1 and offsets[-1] == bits.size, "bad offsets")
            plan = {(int(l), ("fwd", "bwd")[int(d)], int(s), int(r)): bits[a:b]
                    for (l, d, s, r), a, b in zip(keys, offsets[:-1], offsets[1:])}
            return cls(meta["num_layers"], meta["num_parts"], plan)
        except (AdaqpInputError, KeyError, IndexError, TypeError, ValueError) as e:
            raise AdaqpInputError(f"{jpath}: invalid BitPlan: {e}") from None


def _pos_int(v, what: str) -> int:
    require(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1,
            f"{what} must be a positive integer, got {v!r}")
    return int(v)


def _row_bytes(width: int) -> np.ndarray:
    w = _pos_int(width, "feature width")
    return np.array([row_nbytes(w, b) for b in ALL_BITS], dtype=np.int64)


def _stem(path) -> Path:
    p = Path(path)
    if p.is_dir() or str(path).endswith(("/", os.sep)):
        return p / "bitplan"
    return p.with_suffix("") if p.suffix in (".json", ".npz") else p


def _digest(arrays: Mapping[str, np.ndarray]) -> str:
    """Ties the .json to its .npz: a hash of the canonical little-endian bytes of the arrays."""
    h = hashlib.sha256()
    for name, dtype in (("keys", "<i8"), ("offsets", "<i8"), ("bits", "i1")):
        a = np.asarray(arrays[name])
        h.update(name.encode() + str(a.shape).encode())
        h.update(np.ascontiguousarray(a.astype(dtype, copy=False)).tobytes())
    return h.hexdigest()
