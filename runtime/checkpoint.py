"""Per-rank training checkpoints: atomic to write, pickle-free to read.

A checkpoint is loaded with ``torch.load(..., weights_only=True)``, which only rebuilds tensors and
plain containers, so opening a checkpoint from elsewhere cannot run code. ``state`` may hold:

- tensors (any dtype, stored on CPU when loaded), ``torch.dtype``, ``torch.Size``;
- ``int`` (any size), ``float``, ``bool``, ``str``, ``bytes``, ``None``;
- ``dict`` (``OrderedDict`` included, so ``model.state_dict()`` and ``optimizer.state_dict()``
  go in as they are), ``list`` and ``tuple`` of the above;
- numpy arrays and scalars, which are converted on save (arrays become tensors, scalars Python
  numbers) -- e.g. a BitPlan's width arrays; call ``.numpy()`` after loading to get arrays back;
- RNG states as produced by :func:`rng_state` (torch states are uint8 tensors, numpy's MT19937
  key a tensor, Python's ``random`` state a tensor of its 625 words).

Anything else (a custom object, a function, a numpy object array) is refused at save time with
a ``TypeError`` naming where it sits, rather than pickled into a file that would not load.
"""

from __future__ import annotations

import os
import pickle
import random
import warnings
from collections import OrderedDict
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adaqp.errors import AdaqpInputError
from adaqp.runtime import faults

_LEAVES = (torch.Tensor, torch.dtype, torch.Size, int, float, bool, str, bytes, type(None))


def checkpoint_path(directory: str | os.PathLike, rank: int) -> Path:
    """A single-file checkpoint of ``rank`` in ``directory``; training keeps a series of them
    instead (:mod:`adaqp.runtime.resume`)."""
    return Path(directory) / f"rank{rank}.pt"


def _plain(obj: Any, where: str) -> Any:
    """``obj`` with numpy values converted, or a TypeError naming the first unsupported value."""
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise TypeError(f"checkpoint value {where} is a numpy object array; only plain data is saved")
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, _LEAVES):
        return obj
    if isinstance(obj, dict):
        out = OrderedDict() if isinstance(obj, OrderedDict) else {}  # state_dicts keep their type
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"checkpoint key {where}[{k!r}] must be a str or int")
            out[k] = _plain(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        items = [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    raise TypeError(f"checkpoint value {where} has type {type(obj).__name__}; "
                    "only tensors, numbers, strings, lists, tuples and dicts are saved")


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` to ``path`` atomically: after a crash the file is the old one or the new one."""
    path = Path(path)
    state = _plain(state, "state")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())  # the data must be on disk before the rename makes it visible
        faults.point("checkpoint")  # a kill here leaves the temporary file and the previous checkpoints
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def _fsync_dir(directory: Path) -> None:
    # makes the rename itself durable; not every platform lets a directory be opened
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; refuse anything but plain data."""
    path = Path(path)
    if not path.is_file():
        raise AdaqpInputError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": the refusal below says more
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise AdaqpInputError(f"checkpoint {path} holds more than plain data and is refused "
                              f"(weights_only loading): {_unpickler_reason(e)}") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for a damaged file
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise AdaqpInputError(f"corrupt checkpoint {path}: {first or type(e).__name__}") from None
    if not isinstance(state, dict):
        raise AdaqpInputError(f"checkpoint {path} holds a {type(state).__name__}, not a dict")
    return state


def _unpickler_reason(e: Exception) -> str:
    # torch's message is a page of advice; the words after "WeightsUnpickler error:" are the reason
    text = str(e)
    _, found, reason = text.partition("WeightsUnpickler error:")
    reason = " ".join((reason if found else text).split("Check the documentation")[0].split())
    return reason.split(" Please use")[0] or "not plain data"


def rng_state() -> dict:
    """Every global RNG this process draws from, in a form ``weights_only`` loading accepts."""
    version, words, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state = {
        "torch": torch.get_rng_state(),
        "python": {"version": version, "words": torch.tensor(words, dtype=torch.int64), "gauss": gauss},
        "numpy": generator_state_plain(np_state),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured, so the same random draws follow."""
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py["version"], tuple(int(w) for w in py["words"].tolist()), py["gauss"]))
    np.random.set_state(generator_state_numpy(state["numpy"]))
    # a checkpoint from a CUDA run may be resumed on CPU only; the CUDA part is then unused
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def generator_state_plain(state: dict) -> dict:
    """A numpy ``bit_generator.state`` dict with each array kept as its raw bits and dtype.

    MT19937's key is uint32 and Philox's counter uint64; a signed tensor of the same width holds
    the bits exactly, and the dtype string brings the numpy view back.
    """
    out = {}
    for k, v in state.items():
        if isinstance(v, dict):
            v = generator_state_plain(v)
        elif isinstance(v, np.ndarray):
            signed = np.dtype(f"i{v.dtype.itemsize}")
            v = {"bits": torch.from_numpy(np.ascontiguousarray(v).view(signed)), "dtype": v.dtype.str}
        out[k] = v
    return out


def generator_state_numpy(state: dict) -> dict:
    """Inverse of :func:`generator_state_plain`, ready for ``np.random.set_state`` or a bit generator."""
    out = {}
    for k, v in state.items():
        if isinstance(v, dict) and set(v) == {"bits", "dtype"}:
            v = v["bits"].numpy().view(np.dtype(v["dtype"]))
        elif isinstance(v, dict):
            v = generator_state_numpy(v)
        out[k] = v
    return out
