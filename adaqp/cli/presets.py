"""Run presets: ``--config NAME|FILE.yaml`` for ``train``, ``validate`` and ``reproduce``.

A preset is a YAML mapping of flags to values. Keys are the command's flags, spelled as the flag
(``weight-decay``, ``no-layer-norm``) or as its destination (``weight_decay``, ``layer_norm``),
``-`` and ``_`` alike. Top-level keys apply to every command; a mapping under a command's name
(``train:``, ``validate:``, ``reproduce:``) applies to that command only and wins over the top
level. The values become the subcommand's defaults before the command line is parsed again, so
a flag given on the command line always wins over the file.

Each value goes through the flag's own type and choices, so a preset can hold nothing the command
line would refuse. Unknown keys, bad values and bad YAML raise :class:`AdaqpInputError` (one line,
exit 2 from the CLI). Bundled presets are the ``*.yaml`` files of ``adaqp/data/presets`` (package
data: they install with the wheel); each file says where its numbers come from.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from adaqp.errors import AdaqpInputError, require

PRESET_DIR = Path(__file__).resolve().parents[1] / "data" / "presets"
COMMANDS_WITH_CONFIG = ("train", "validate", "reproduce")


def preset_names(command: str | None = None) -> list[str]:
    """The bundled presets, by name (file stem), sorted; with ``command``, those with a section
    for it. Found by a line scan, not by YAML: every ``adaqp`` call builds these parsers."""
    files = sorted(PRESET_DIR.glob("*.yaml"))
    if command is not None:
        files = [f for f in files if re.search(rf"^{command}:", f.read_text(), re.MULTILINE)]
    return [f.stem for f in files]


def add_config(p: argparse.ArgumentParser, command: str) -> None:
    """The ``--config`` option; its help names the bundled presets that have flags for ``command``."""
    p.add_argument("--config", metavar="NAME|FILE.yaml", default=None,
                   help="take flags from a YAML file (keys: this command's flags, e.g. hidden, layers) "
                        f"or a bundled preset: {', '.join(preset_names(command))}; flags given on the "
                        "command line win over the file (docs/presets.md)")


def resolve(spec: str) -> Path:
    """A bundled preset's file, or ``spec`` itself when it names a file."""
    path = Path(spec).expanduser()
    if path.suffix in (".yaml", ".yml") or path.exists():
        require(path.is_file(), f"--config: no file {spec}")
        return path
    bundled = PRESET_DIR / f"{spec}.yaml"
    require(bundled.is_file(), f"--config: no preset named {spec!r} and no such file "
                               f"(presets: {', '.join(preset_names())})")
    return bundled


def load(spec: str, command: str) -> dict:
    """The flags ``spec`` sets for ``command``: the top level, then that command's section."""
    import yaml

    path = resolve(spec)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise AdaqpInputError(f"--config {spec}: not valid YAML{where}: {problem}") from None
    data = {} if data is None else data
    require(isinstance(data, dict), f"--config {spec}: expected a mapping of flags to values, "
                                    f"got {type(data).__name__}")
    sections = {k: v for k, v in data.items() if k in COMMANDS_WITH_CONFIG and isinstance(v, dict)}
    flags = {k: v for k, v in data.items() if k not in sections}
    flags.update(sections.get(command, {}))
    return flags


def _key_map(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Every spelling a key may take (dest, or option without dashes; ``-`` as ``_``) -> action."""
    out: dict[str, argparse.Action] = {}
    for a in parser._actions:
        if isinstance(a, argparse._HelpAction) or a.dest in ("config", argparse.SUPPRESS):
            continue
        out[a.dest.replace("-", "_")] = a
        for opt in a.option_strings:
            if opt.startswith("--"):
                out[opt[2:].replace("-", "_")] = a
    return out


def _value(action: argparse.Action, key: str, value, source: str):
    """``value`` converted as the command line would convert it for ``action``."""
    bad = lambda msg: AdaqpInputError(f"{source}: {key}: {msg}")  # noqa: E731
    if action.nargs == 0:  # store_true / store_false / store_const: a switch
        if not isinstance(value, bool):
            raise bad(f"takes true or false, got {value!r}")
        if key == action.dest.replace("-", "_"):  # the destination itself (layer_norm: false)
            return value
        return action.const if value else action.default  # the flag (no_layer_norm: true)
    if isinstance(action, argparse._AppendAction):
        items = value if isinstance(value, list) else [value]
        return [_value(argparse.Action([], action.dest, type=action.type, choices=action.choices), key, v, source)
                for v in items]
    if value is None or isinstance(value, (bool, dict)):
        raise bad(f"expected a value as on the command line, got {value!r}")
    text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
    try:
        out = action.type(text) if action.type is not None else text
    except (argparse.ArgumentTypeError, ValueError, TypeError) as e:
        raise bad(str(e) or f"invalid value {text!r}") from None
    if action.choices is not None and out not in action.choices:
        raise bad(f"{out!r} is not one of {', '.join(map(str, action.choices))}")
    return out


def defaults_from(parser: argparse.ArgumentParser, flags: dict, command: str, source: str) -> dict:
    """``{dest: value}`` for the subcommand ``parser``; refuses unknown keys, positional
    arguments, two keys for one flag and values the flag's type refuses."""
    keys = _key_map(parser)
    out: dict[str, object] = {}
    seen: dict[str, str] = {}
    for raw, value in flags.items():
        key = str(raw).replace("-", "_")
        action = keys.get(key)
        if action is None:
            raise AdaqpInputError(f"{source}: unknown key {raw!r} for adaqp {command} (keys are its flags, "
                                  f"see adaqp {command} --help)")
        require(bool(action.option_strings), f"{source}: {raw!r} is given on the command line, not in a preset")
        require(action.dest not in seen, f"{source}: keys {seen.get(action.dest)!r} and {raw!r} set the same flag")
        seen[action.dest] = str(raw)
        out[action.dest] = _value(action, key, value, source)
    return out


def subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            return a.choices[command]
    raise KeyError(command)


def reparse(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str] | None):
    """Parse ``argv`` again with ``args.config``'s flags as the subcommand's defaults."""
    source = f"--config {args.config}"
    sub = subparser(parser, args.command)
    values = defaults_from(sub, load(args.config, args.command), args.command, source)
    # an append flag (validate --dataset) would add the command line's items to a list default:
    # the file's list is used only where the command line gave none
    appends = {a.dest for a in sub._actions if isinstance(a, argparse._AppendAction)}
    sub.set_defaults(**{k: v for k, v in values.items() if k not in appends})
    new = parser.parse_args(argv)
    for dest in appends & values.keys():
        if getattr(args, dest) == sub.get_default(dest):
            setattr(new, dest, values[dest])
    return new
