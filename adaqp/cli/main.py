"""The ``adaqp`` entry point: argument parsing and lazy dispatch.

Each subcommand lives in its own module exposing ``add_parser(subparsers)`` and ``run(args)``;
the module is imported only when its command runs, so ``adaqp --help`` stays fast and a
component's heavy imports never slow another command down.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from adaqp import __version__
from adaqp.cli.common import OneLineParser
from adaqp.errors import AdaqpInputError

# subcommand -> module under adaqp.cli (imported for its parser, run lazily)
COMMANDS = {
    "data": "adaqp.cli.data_cmd",
    "partition": "adaqp.cli.partition_cmd",
    "train": "adaqp.cli.train_cmd",
    "estimate": "adaqp.cli.estimate_cmd",
    "simulate": "adaqp.cli.simulate_cmd",
    "plan": "adaqp.cli.plan_cmd",
    "demo": "adaqp.cli.demo_cmd",
    "profile": "adaqp.cli.profile_cmd",
    "whatif": "adaqp.cli.whatif_cmd",
    "validate": "adaqp.cli.validate_cmd",
    "reproduce": "adaqp.cli.reproduce_cmd",
}


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="adaqp",
        description="Plan, simulate and run distributed full-graph GNN training with adaptive "
                    "message quantization and overlap (AdaQP).",
    )
    p.add_argument("--version", action="version", version=f"adaqp {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from adaqp.runtime.hostmem import keep_freed_pages

    keep_freed_pages()  # before any tensor: ops are timed and trained with the same allocator
    try:
        if getattr(args, "config", None):  # a preset's flags become defaults; the command line wins
            from adaqp.cli.presets import reparse

            args = reparse(parser, args, argv)
        return int(args.run(args) or 0)
    except AdaqpInputError as e:
        print(f"adaqp {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"adaqp {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `adaqp ... | head`: the reader left; say nothing more
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # an unwritable --out, a full disk, a file that vanished: path and reason
        print(f"adaqp {args.command}: error: {os_error_line(e)}", file=sys.stderr)
        return 2
    except MemoryError as e:  # numpy names the allocation that failed; a size in the input was too large
        first = (str(e).strip().splitlines() or [""])[0]
        print(f"adaqp {args.command}: error: out of memory{': ' + first if first else ''}", file=sys.stderr)
        return 2


def os_error_line(e: OSError) -> str:
    """``PATH: reason`` (``SRC -> DST: reason`` for a rename), on one line."""
    reason = e.strerror or " ".join(str(e).split()) or type(e).__name__
    where = " -> ".join(str(p) for p in (e.filename, e.filename2) if p is not None)
    return f"{where}: {reason}" if where else reason


if __name__ == "__main__":
    sys.exit(main())
