"""A series of checkpoints per rank, and the epoch every rank resumes from.

Each save writes ``rank{r}-epoch{e}.pt`` (atomically, :func:`save_checkpoint`) and then a JSON
sidecar ``rank{r}-epoch{e}.json`` with the file's length and SHA-256. The sidecar is written
last, so its presence says the checkpoint was complete; a checkpoint whose bytes no longer match
it (truncated, overwritten) is invalid. The newest ``keep`` checkpoints of a rank are kept and
older ones deleted.

Why two are enough: a rank writes epoch ``e``'s checkpoint only after the all-reduce of epoch
``e``, which every rank reaches only after writing its checkpoint of the previous checkpoint
epoch. So when a job dies, the ranks' newest checkpoints are at most one checkpoint apart, and the
previous one of the rank that is ahead is the newest every rank has.

Resuming, the ranks agree on the newest epoch for which *every* rank has a valid checkpoint
(:func:`agree`); a rank without any valid checkpoint is an error naming it. Checkpoints newer
than the agreed epoch are deleted: they belong to the run that died, and a later resume must not
mix them with the resumed run's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from adaqp.errors import AdaqpInputError

KEEP = 2
_NAME = re.compile(r"^rank(\d+)-epoch(\d+)\.pt$")


def epoch_path(directory: str | os.PathLike, rank: int, epoch: int) -> Path:
    return Path(directory) / f"rank{rank}-epoch{epoch}.pt"


def sidecar_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_checkpoint(directory: str | os.PathLike, rank: int, epoch: int, state: dict, keep: int = KEEP) -> Path:
    """Save ``state`` as rank ``rank``'s checkpoint of ``epoch``, its sidecar, and prune old ones."""
    from adaqp.io import write_json
    from adaqp.runtime.checkpoint import save_checkpoint

    path = save_checkpoint(epoch_path(directory, rank, epoch), state)
    write_json(sidecar_path(path), {"rank": rank, "epoch": epoch, "nbytes": path.stat().st_size,
                                    "sha256": _sha256(path)})
    epochs = _epochs_on_disk(directory, rank)
    for e in epochs[:-keep] if keep > 0 else []:
        _delete(directory, rank, e)
    for tmp in Path(directory).glob(f".rank{rank}-epoch*.tmp"):  # a write cut short by a kill
        tmp.unlink(missing_ok=True)
    return path


def _epochs_on_disk(directory: str | os.PathLike, rank: int) -> list[int]:
    """Epochs with a checkpoint file of ``rank`` (valid or not), ascending."""
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [(int(m.group(1)), int(m.group(2))) for n in names if (m := _NAME.match(n))]
    return sorted(e for r, e in found if r == rank)


def _delete(directory: str | os.PathLike, rank: int, epoch: int) -> None:
    path = epoch_path(directory, rank, epoch)
    sidecar_path(path).unlink(missing_ok=True)  # the sidecar first: a file without one is not trusted
    path.unlink(missing_ok=True)


def is_valid(path: Path, rank: int, epoch: int) -> bool:
    """The file and its sidecar exist, and length and SHA-256 match what the sidecar recorded."""
    try:
        meta = json.loads(sidecar_path(path).read_text())
        return (isinstance(meta, dict) and meta.get("rank") == rank and meta.get("epoch") == epoch
                and meta.get("nbytes") == path.stat().st_size and meta.get("sha256") == _sha256(path))
    except (OSError, ValueError):
        return False


def valid_epochs(directory: str | os.PathLike, rank: int) -> list[int]:
    """Epochs for which ``rank`` has a valid checkpoint, ascending."""
    return [e for e in _epochs_on_disk(directory, rank) if is_valid(epoch_path(directory, rank, e), rank, e)]


def latest_checkpoint(directory: str | os.PathLike, rank: int) -> Path | None:
    """The newest valid checkpoint of ``rank``, or None."""
    epochs = valid_epochs(directory, rank)
    return epoch_path(directory, rank, epochs[-1]) if epochs else None


def agree(per_rank: list[list[int]], directory: str | os.PathLike) -> int:
    """The newest epoch in every rank's list of valid checkpoints, or one line saying why none is."""
    if not any(per_rank):
        raise AdaqpInputError(f"--resume: no valid checkpoint to resume from in {directory} "
                              "(train with --checkpoint-every N first)")
    missing = [r for r, epochs in enumerate(per_rank) if not epochs]
    if missing:
        who = (f"rank {missing[0]} of {len(per_rank)} has" if len(missing) == 1 else
               f"ranks {', '.join(map(str, missing))} of {len(per_rank)} have")
        raise AdaqpInputError(f"--resume: {who} no valid checkpoint in {directory}")
    common = set(per_rank[0]).intersection(*per_rank[1:])
    if not common:
        have = "; ".join(f"rank {r}: {', '.join(map(str, e))}" for r, e in enumerate(per_rank))
        raise AdaqpInputError(f"--resume: no epoch for which every rank has a valid checkpoint in "
                              f"{directory} ({have})")
    return max(common)


def resume_epoch(directory: str | os.PathLike, world: int) -> int:
    """What the ranks will agree on, read by one process that sees every rank's files."""
    return agree([valid_epochs(directory, r) for r in range(world)], directory)


def require_epochs_left(epoch: int, epochs: int, directory: str | os.PathLike) -> None:
    """A resumed run needs at least one epoch to train (its summary is over the epochs it ran)."""
    if epoch + 1 >= epochs:
        raise AdaqpInputError(f"--resume: the checkpoints in {directory} already reach epoch {epoch + 1} "
                              f"of {epochs}; nothing is left to train (raise --epochs)")


def discard_after(directory: str | os.PathLike, rank: int, epoch: int) -> None:
    """Delete ``rank``'s checkpoints newer than ``epoch`` (the run being resumed got past them)."""
    for e in _epochs_on_disk(directory, rank):
        if e > epoch:
            _delete(directory, rank, e)
