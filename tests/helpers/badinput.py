"""Shared pieces of the bad-input suite: the CLI run in-process, the outcome rule, the mutations.

The rule every case must meet: exit 0 (the mutation happened to be valid), or exit 2 with exactly
one ``adaqp COMMAND: error: ...`` line on stderr naming the problem; never a traceback, never
another exit code. Progress lines (``· ...``) and warnings may accompany either.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal

import numpy as np
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from adaqp.cli.main import main

# bounded and reproducible: the same examples on every run, no per-example deadline (a CLI call
# partitions and prices a graph), no shrinking (minutes per failure; the failing example is printed)
# ADAQP_BADINPUT_EXAMPLES=200 searches deeper by hand; CI runs the bounded default
BOUNDED = settings(max_examples=int(os.environ.get("ADAQP_BADINPUT_EXAMPLES", 25)), deadline=None, derandomize=True,
                   database=None,
                   phases=(Phase.explicit, Phase.generate),
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
_ERROR = re.compile(r"^adaqp [\w-]+: error: \S")
_NOISE = re.compile(r"^(· |adaqp(?: [\w-]+)?: warning: )")


class TooSlow(Exception):
    """A bad value made a command run on instead of being refused (e.g. a billion layers)."""


def _alarm(signum, frame):
    raise TooSlow(f"no answer within {LIMIT_S} s")


LIMIT_S = 30


def run_cli(argv: list[str]) -> tuple[int, str]:
    """``adaqp ARGV`` in this process: (exit code, stderr); TooSlow after LIMIT_S seconds."""
    err = io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(LIMIT_S)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main([str(a) for a in argv])
            except SystemExit as e:  # argparse exits for bad flags
                code = e.code if isinstance(e.code, int) else 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return code, err.getvalue()


def assert_refused_or_ok(argv: list[str]) -> tuple[int, str]:
    code, err = run_cli(argv)
    assert "Traceback" not in err, f"traceback for {argv}:\n{err}"
    assert code in (0, 2), f"exit {code} for {argv}:\n{err}"
    if code == 2:
        lines = [ln for ln in err.splitlines() if ln.strip() and not _NOISE.match(ln)]
        assert len(lines) == 1 and _ERROR.match(lines[0]), f"not one error line for {argv}:\n{err}"
    return code, err


# ---- array mutations ---------------------------------------------------------------------------
ARRAY_MUTATIONS = ("drop", "float", "int8", "bool", "str", "object", "flatten", "extra_axis", "transpose",
                   "nan", "inf", "negative", "huge", "empty", "shorter", "longer")


def mutate_array(a: np.ndarray, kind: str, k: int) -> np.ndarray | None:
    """``a`` damaged as ``kind`` says (``k`` picks an element); None means: drop the array."""
    a = np.array(a)
    i = k % max(a.size, 1)
    if kind == "drop":
        return None
    if kind in ("float", "int8", "bool"):
        return a.astype({"float": np.float64, "int8": np.int8, "bool": bool}[kind]) if a.dtype.kind in "biuf" else a
    if kind == "str":
        return a.astype(str)
    if kind == "object":
        return a.astype(object)
    if kind == "flatten":
        return a.reshape(-1)
    if kind == "extra_axis":
        return a[..., None]
    if kind == "transpose":
        return a.T
    if a.ndim == 0 and kind in ("empty", "shorter", "longer", "transpose"):
        return np.zeros(0, a.dtype) if kind != "longer" else np.stack([a, a])
    if a.size == 0 or a.dtype.kind not in "biuf":
        return a[:0] if kind == "empty" else a
    flat = a.reshape(-1).copy()
    if kind in ("nan", "inf"):
        flat = flat.astype(np.float64)
        flat[i] = np.nan if kind == "nan" else np.inf
    elif kind == "negative":
        flat[i] = -1 - k % 100 if a.dtype.kind in "if" else flat[i]  # within int8
    elif kind == "huge":
        flat[i] = np.iinfo(np.int32).max if a.dtype.kind in "iu" else 1e30
    elif kind == "empty":
        return a[:0]
    elif kind == "shorter":
        return a[:-1 - k % max(len(a), 1)]
    elif kind == "longer":
        return np.concatenate([a, a[:1 + k % len(a)]])
    return flat.reshape(a.shape)


def write_npz_raw(path, arrays: dict) -> None:
    """np.savez as it is, object arrays included (a pickle inside: the readers must refuse it)."""
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def mutate_npz(path, key: str, kind: str, k: int) -> None:
    with np.load(path, allow_pickle=False) as z:
        arrays = {n: z[n] for n in z.files}
    new = mutate_array(arrays[key], kind, k)
    if new is None:
        del arrays[key]
    else:
        arrays[key] = new
    write_npz_raw(path, arrays)


# ---- byte mutations ----------------------------------------------------------------------------
byte_damage = st.tuples(st.sampled_from(("truncate", "flip", "empty", "garbage")), st.integers(0, 10**6))


def damage_bytes(path, how: tuple[str, int]) -> None:
    kind, k = how
    data = bytearray(open(path, "rb").read())
    if kind == "truncate":
        data = data[:k % max(len(data), 1)]
    elif kind == "flip":
        data[k % len(data)] ^= 0xFF
    elif kind == "empty":
        data = bytearray()
    else:
        data = bytearray(b"\x00garbage\xff" * (1 + k % 5))
    open(path, "wb").write(bytes(data))


# ---- JSON-like mutations -----------------------------------------------------------------------
JSON_VALUES = (None, "x", -1, 0, 1.5, 10**12, float("nan"), float("inf"), -float("inf"), True, [], {}, [1, 2], "")
json_damage = st.tuples(st.sampled_from(("replace", "drop", "wrap")), st.integers(0, 10**6),
                        st.sampled_from(JSON_VALUES))


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for key, v in obj.items():
            yield from _paths(v, prefix + (key,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:8]):
            yield from _paths(v, prefix + (i,))


def mutate_tree(obj, how):
    """One value somewhere in a parsed JSON/YAML tree replaced, dropped or wrapped in a list."""
    kind, k, value = how
    paths = [p for p in _paths(obj) if p]
    if not paths:
        return value
    path = paths[k % len(paths)]
    parent = obj
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if kind == "drop":
        del parent[last]
    elif kind == "wrap":
        parent[last] = [parent[last]]
    else:
        parent[last] = value
    return obj


def mutate_json_file(path, how) -> None:
    obj = mutate_tree(json.loads(open(path).read()), how)
    open(path, "w").write(json.dumps(obj))
