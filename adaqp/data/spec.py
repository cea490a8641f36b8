"""One dataset spec string for the whole CLI.

Forms: a bundled name (``cora``, ``citeseer``); a generator with ``key=value`` parameters
(``sbm:nodes=100000,classes=16,feat=128,deg=20,seed=0``, ``rmat:scale=18,edgefactor=16``); or a
path: a ``.npz`` file, a GraphSAINT folder (has ``adj_full.npz``) or an OGB folder (has
``raw/edge.csv.gz``). Generator keys and their types come from the generator's signature, so a
new keyword argument is accepted here without touching this file.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from pathlib import Path
from typing import Any, Callable

from adaqp.data.bundled import BUNDLED
from adaqp.data.generators import rmat, sbm
from adaqp.errors import AdaqpInputError, require
from adaqp.graph import Graph

GENERATORS: dict[str, Callable[..., Graph]] = {"sbm": sbm, "rmat": rmat}


def _options() -> str:
    return (f"{', '.join(BUNDLED)}, " + ", ".join(f"{g}:key=value,..." for g in GENERATORS)
            + ", a .npz file, or a GraphSAINT / OGB folder")


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split a spec into ``(kind, params)``.

    ``kind`` is ``bundled`` (params ``name``), a generator name (its keyword arguments, typed),
    or ``npz`` / ``graphsaint`` / ``ogb`` (params ``path``).
    """
    require(isinstance(spec, str) and spec.strip() != "", f"empty dataset spec; choose {_options()}")
    spec = spec.strip()
    if spec.lower() in BUNDLED:
        return "bundled", {"name": spec.lower()}
    head, _, tail = spec.partition(":")
    if head.lower() in GENERATORS:
        return head.lower(), _parse_params(head.lower(), tail)
    return _classify_path(spec)


def _parse_params(kind: str, text: str) -> dict[str, Any]:
    sig = inspect.signature(GENERATORS[kind], eval_str=True)
    params: dict[str, Any] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, eq, value = (s.strip() for s in item.partition("="))
        require(eq == "=" and key and value, f"{kind}: expected key=value, got {item!r}")
        require(key in sig.parameters,
                f"{kind}: unknown key {key!r}; valid keys: {', '.join(sig.parameters)}")
        require(key not in params, f"{kind}: key {key!r} given twice")
        params[key] = _coerce(kind, key, value, sig.parameters[key].annotation)
    missing = [k for k, p in sig.parameters.items() if p.default is inspect.Parameter.empty and k not in params]
    require(not missing, f"{kind}: missing required key(s) {', '.join(missing)} (e.g. {_example(kind)})")
    return params


def _wanted_type(annotation) -> type:
    """``int`` for int parameters, else ``float`` (``float | None`` counts as float)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return int if annotation is int else float


def _coerce(kind: str, key: str, value: str, annotation) -> int | float:
    wanted = _wanted_type(annotation)
    try:
        number = float(value)
    except ValueError:
        what = "an integer" if wanted is int else "a number"
        raise AdaqpInputError(f"{kind}: key {key!r} expects {what}, got {value!r}") from None
    if wanted is int:
        # Accept 1e6 or 100_000 for integers, but never silently truncate 2.5.
        require(math.isfinite(number) and number == int(number),
                f"{kind}: key {key!r} expects an integer, got {value!r}")
        return int(value) if value.lstrip("+-").replace("_", "").isdigit() else int(number)
    return number


def _classify_path(spec: str) -> tuple[str, dict[str, Any]]:
    p = Path(spec).expanduser()
    if p.is_file():
        require(p.suffix == ".npz", f"unsupported dataset file {p} (expected a .npz file)")
        return "npz", {"path": str(p)}
    if p.is_dir():
        if (p / "adj_full.npz").is_file():
            return "graphsaint", {"path": str(p)}
        if (p / "raw" / "edge.csv.gz").is_file():
            return "ogb", {"path": str(p)}
        raise AdaqpInputError(f"{p}: folder is neither GraphSAINT (adj_full.npz) nor OGB (raw/edge.csv.gz)")
    if "/" in spec or "\\" in spec or p.suffix:
        raise AdaqpInputError(f"dataset path not found: {spec}")
    raise AdaqpInputError(f"unknown dataset {spec!r}; choose {_options()}")


def load_dataset(spec: str) -> Graph:
    """Load or generate the graph a spec names (see :func:`parse_spec`)."""
    from adaqp.data import bundled, loaders

    kind, params = parse_spec(spec)
    if kind == "bundled":
        return bundled.load_bundled(params["name"])
    if kind in GENERATORS:
        return GENERATORS[kind](**params)
    load = {"npz": loaders.load_npz_dataset, "graphsaint": loaders.load_graphsaint, "ogb": loaders.load_ogb}
    return load[kind](params["path"])


def _example(kind: str) -> str:
    return {"sbm": "sbm:nodes=100000,classes=16,feat=128", "rmat": "rmat:scale=18"}.get(kind, kind)


def describe_spec_help() -> str:
    """A short help text for ``--dataset`` listing every form and generator key."""
    lines = ["Dataset spec, one of:",
             f"  {' | '.join(BUNDLED)}            bundled Planetoid graphs"]
    for kind, fn in GENERATORS.items():
        keys = []
        for key, p in inspect.signature(fn).parameters.items():
            keys.append(key if p.default is inspect.Parameter.empty else f"{key}={p.default}")
        lines.append(f"  {kind}:{','.join(keys)}")
    lines += ["  PATH.npz              edge_index/features/labels/masks arrays, or a Graph.save file",
              "  DIR                   GraphSAINT (adj_full.npz, feats.npy, class_map.json, role.json)",
              "                        or OGB raw layout (raw/*.csv.gz, split/.../{train,valid,test}.csv.gz)",
              "Generator keys without a default are required; synthetic splits are random 50/25/25."]
    return "\n".join(lines)
