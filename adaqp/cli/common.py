"""Arguments shared by several commands (kept import-light: argparse only)."""

from __future__ import annotations

import argparse
from pathlib import Path

DATASET_HELP = (
    "dataset spec: cora | citeseer | sbm:nodes=N,classes=C,feat=F,deg=D,seed=S | "
    "rmat:scale=S,edgefactor=E,feat=F,classes=C,seed=S | a .npz file | a GraphSAINT or OGB folder"
)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (``adaqp train: error: argument --epochs: ...``), like
    every other input error; the usage block it would print first is what ``--help`` shows.
    Subcommand parsers inherit the class (argparse's ``parser_class`` default)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def comma_list(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")`` (an argparse type for list options)."""
    return tuple(t.strip() for t in text.split(",") if t.strip())


def comma_ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in comma_list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def add_dataset(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", metavar="DATASET", help=DATASET_HELP)


def add_out(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="DIR", type=Path, default=None,
                   help="write CSV/PNG files and summary.json here (created if missing)")


def add_partition_args(p: argparse.ArgumentParser, parts_required: bool = True) -> None:
    p.add_argument("--parts", type=positive_int, required=parts_required, default=None,
                   help="number of parts (one per rank)" + ("" if parts_required else
                                                              "; default: the cluster's rank count"))
    p.add_argument("--method", choices=("metis", "random", "contiguous"), default="metis",
                   help="partitioner (default: metis)")
    p.add_argument("--balance", choices=("nodes", "edges"), default="nodes",
                   help="what METIS balances across parts (default: nodes)")
    p.add_argument("--seed", type=int, default=0, help="partitioner seed (default: 0)")


def prepare_out(out: Path | None) -> Path | None:
    from adaqp.errors import require

    if out is None:
        return None
    require(not out.exists() or out.is_dir(), f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    # summary.json is every command's last write (atomic): its presence says the run completed, so a
    # previous run's must not stand beside this run's files if this one fails half way
    (out / "summary.json").unlink(missing_ok=True)
    return out
