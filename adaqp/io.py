"""Atomic, pickle-free artifact I/O: JSON and ``.npz``.

Every artifact the project writes goes through here so that a crash mid-write never leaves a
half-written file behind (write to a temporary file in the same folder, then ``os.replace``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from adaqp.errors import AdaqpInputError


def _atomic_target(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    # mkstemp creates 0600; artifacts get the permissions a plain open() would give them
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return Path(tmp)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` atomically: readers see the old file or the new one, never half of it."""
    path = Path(path)
    tmp = _atomic_target(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_csv(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> Path:
    """Write ``rows`` as CSV with a header (``columns``, default the first row's keys; other keys
    are left out), atomically."""
    columns = list(columns or (rows[0].keys() if rows else []))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return write_text(path, buf.getvalue())


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_summary(out: str | os.PathLike, summary: Mapping[str, Any]) -> Path:
    """``summary`` as ``out/summary.json``: the headline figures every command writes under ``--out``."""
    return write_json(Path(out) / "summary.json", dict(summary))


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def read_json(path: str | os.PathLike) -> Any:
    """Read JSON, turning a missing or corrupt file into :class:`AdaqpInputError`."""
    path = Path(path)
    if not path.is_file():
        raise AdaqpInputError(f"file not found: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AdaqpInputError(f"corrupt JSON file {path}: {e}") from None


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], compress: bool = False) -> Path:
    """Write named arrays to ``.npz`` atomically (object arrays are refused: no pickle)."""
    path = Path(path)
    for name, a in arrays.items():
        if np.asarray(a).dtype == object:
            raise TypeError(f"array {name!r} has dtype object; artifacts never use pickle")
    tmp = _atomic_target(path)
    try:
        with open(tmp, "wb") as f:
            (np.savez_compressed if compress else np.savez)(f, **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_npz(path: str | os.PathLike, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` (``allow_pickle=False``); check required keys are present."""
    path = Path(path)
    if not path.is_file():
        raise AdaqpInputError(f"file not found: {path}")
    # np.load treats any non-zip file as a pickle; say what is wrong instead
    if not zipfile.is_zipfile(path):
        raise AdaqpInputError(f"corrupt .npz file {path}: not a zip archive")
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise AdaqpInputError(f"corrupt .npz file {path}: {e}") from None
    missing = [k for k in required if k not in out]
    if missing:
        raise AdaqpInputError(f"{path} lacks array(s) {', '.join(missing)}")
    return out
