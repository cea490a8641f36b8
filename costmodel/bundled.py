"""Bundled cluster specs (``costmodel/clusters/*.yaml``), loadable by name.

The folder is package data rather than a package: each YAML file is a :class:`ClusterSpec` with
a header comment saying what it describes and where its numbers come from. A user names one
(``local-cpu``, ``a100-8x-nvlink-2node-100gbe``, ...) or passes a path to their own spec.
"""

from __future__ import annotations

import os
from pathlib import Path

from adaqp.cluster import ClusterSpec
from adaqp.errors import AdaqpInputError

__all__ = ["CLUSTERS_DIR", "list_clusters", "cluster_path", "load_cluster", "describe_cluster"]

CLUSTERS_DIR = Path(__file__).with_name("clusters")


def list_clusters() -> list[str]:
    """Names of the bundled cluster specs, sorted."""
    return sorted(p.stem for p in CLUSTERS_DIR.glob("*.yaml"))


def cluster_path(name: str) -> Path:
    """Path of the bundled spec ``name``; an unknown name lists the bundled ones."""
    p = CLUSTERS_DIR / f"{name}.yaml"
    # a name, never a path: "../x" must not escape the bundled folder
    if os.sep in name or "/" in name or not p.is_file():
        raise AdaqpInputError(f"unknown cluster {name!r}; bundled: {', '.join(list_clusters())} "
                              "(or pass the path of a YAML cluster spec)")
    return p


def load_cluster(name_or_path: str | os.PathLike) -> ClusterSpec:
    """A bundled cluster by name, or a cluster spec YAML file by path.

    Anything that looks like a path (has a YAML suffix or a directory part, or exists on disk) is
    read as a file, so a user's ``./local-cpu.yaml`` is never shadowed by the bundled one.
    """
    s = os.fspath(name_or_path)
    p = Path(s)
    if p.suffix in (".yaml", ".yml") or os.sep in s or "/" in s or p.is_file():
        return ClusterSpec.from_yaml(p)
    return ClusterSpec.from_yaml(cluster_path(s))


def describe_cluster(name: str) -> str:
    """The header comment of a bundled spec, as plain text: what it describes and where its
    numbers come from (for ``adaqp`` listings, so a user sees the caveats before trusting it)."""
    lines = []
    for line in cluster_path(name).read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return " ".join(lines)
