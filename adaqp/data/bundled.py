"""Small real datasets shipped inside the package (Planetoid Cora and CiteSeer).

The files live in ``adaqp/data/files`` (package data, see ``files/README.md`` for provenance) and
are read through :mod:`importlib.resources`, so they load the same from a source checkout, an
installed wheel or a zip.
"""

from __future__ import annotations

from importlib import resources

from adaqp.errors import AdaqpInputError
from adaqp.graph import Graph

# name -> file under adaqp/data/files (same .npz layout as load_npz_dataset reads)
BUNDLED: dict[str, str] = {
    "cora": "cora.npz",
    "citeseer": "citeseer.npz",
}


def load_bundled(name: str) -> Graph:
    """Load a bundled dataset by name (case-insensitive): ``cora`` or ``citeseer``."""
    from adaqp.data.loaders import load_npz_dataset  # lazy: keeps `import bundled` cheap

    key = name.strip().lower()
    if key not in BUNDLED:
        raise AdaqpInputError(f"unknown bundled dataset {name!r}; choose one of {', '.join(BUNDLED)}")
    ref = resources.files("adaqp.data").joinpath("files").joinpath(BUNDLED[key])
    with resources.as_file(ref) as path:
        return load_npz_dataset(path)
