"""docs/commands.md documents every command and every flag: a flag added without its line in the
docs fails here, naming it."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from adaqp.cli.main import COMMANDS, build_parser

DOC = Path(__file__).resolve().parents[2] / "docs" / "commands.md"


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _section(text: str, command: str) -> str:
    """The text of ``## `adaqp COMMAND ...`` up to the next level-2 heading."""
    m = re.search(rf"^## `adaqp {command}\b.*?$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"docs/commands.md has no section '## `adaqp {command} ...`'"
    return m.group(1)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_flag_is_documented(command):
    section = _section(DOC.read_text(), command)
    flags = sorted({o for a in _subparsers()[command]._actions for o in a.option_strings
                    if o.startswith("--") and o != "--help"})
    missing = [f for f in flags if f"`{f}" not in section]
    assert not missing, f"adaqp {command}: flags missing from docs/commands.md: {', '.join(missing)}"


def test_the_check_sees_a_missing_flag():
    # the section lookup and the backtick match are what the test above rests on
    text = "## `adaqp train DATASET`\n\n| `--epochs` | x |\n\n## `adaqp plan`\n\n`--nprocs`\n"
    assert "`--epochs" in _section(text, "train")
    assert "`--nprocs" not in _section(text, "train")
