"""Run presets (``--config``): precedence, refusals, the bundled files (the kipf preset's accuracy:
tests/runtime/test_accuracy_cora.py)."""

import argparse
import fnmatch
import tomllib
from pathlib import Path

import pytest

from adaqp.cli import presets
from adaqp.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def parsed(argv: list[str]) -> argparse.Namespace:
    """What ``main`` would hand to the command, without running it."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return presets.reparse(parser, args, argv) if args.config else args


def write(tmp_path, text: str) -> str:
    f = tmp_path / "p.yaml"
    f.write_text(text)
    return str(f)


def test_file_values_are_used(tmp_path):
    f = write(tmp_path, "hidden: 32\nweight-decay: 1.0e-3\nno_layer_norm: true\nfeature_norm: row\n")
    a = parsed(["train", "cora", "--config", f])
    assert (a.hidden, a.weight_decay, a.layer_norm, a.feature_norm) == (32, 1e-3, False, "row")
    assert a.layers == 3  # a flag the file does not name keeps the command's default


def test_command_line_wins_over_the_file(tmp_path):
    f = write(tmp_path, "hidden: 32\nlayers: 2\nlayer_norm: false\n")
    a = parsed(["train", "cora", "--hidden", "64", "--config", f, "--layers", "4"])
    assert (a.hidden, a.layers, a.layer_norm) == (64, 4, False)


def test_sections_apply_to_their_command_only(tmp_path):
    f = write(tmp_path, "layers: 2\ntrain:\n  nprocs: 3\n  layers: 4\nreproduce:\n  ranks: 5\n")
    t, r = parsed(["train", "cora", "--config", f]), parsed(["reproduce", "--config", f])
    assert (t.nprocs, t.layers) == (3, 4)  # the section wins over the top level
    assert (r.ranks, r.layers) == (5, 2)


def test_append_flag_from_the_file_is_replaced_by_the_command_line(tmp_path):
    f = write(tmp_path, "dataset: [cora, citeseer]\nhidden: 16,32\n")
    assert parsed(["validate", "--config", f]).dataset == ["cora", "citeseer"]
    a = parsed(["validate", "--config", f, "--dataset", "cora"])
    assert a.dataset == ["cora"] and a.hidden == (16, 32)


@pytest.mark.parametrize("text, message", [
    ("hiddn: 32\n", "unknown key 'hiddn' for adaqp train"),
    ("hidden: [1, 2\n", "not valid YAML at line"),
    ("hidden: -3\n", "hidden: must be >= 1"),
    ("model: mlp\n", "model: 'mlp' is not one of gcn, sage"),
    ("no-layer-norm: 1\n", "takes true or false"),
    ("dataset: cora\n", "'dataset' is given on the command line"),
    ("layer_norm: true\nno_layer_norm: true\n", "set the same flag"),
    ("- hidden\n", "expected a mapping"),
])
def test_bad_file_is_one_line_and_exit_2(tmp_path, capsys, text, message):
    f = write(tmp_path, text)
    assert main(["train", "cora", "--config", f]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("adaqp train: error: --config") and message in err[0], err


def test_unknown_preset_name_lists_the_presets(capsys):
    assert main(["train", "cora", "--config", "kipff"]) == 2
    err = capsys.readouterr().err
    assert "no preset named 'kipff'" in err and "kipf" in err and "adaqp-reddit" in err


def test_help_lists_the_presets_for_each_command():
    helps = {c: presets.subparser(build_parser(), c).format_help() for c in ("train", "validate", "reproduce")}
    flat = {c: " ".join(h.split()).replace("- ", "-") for c, h in helps.items()}  # undo argparse's wrapping
    for name in ("kipf", "gat-cora", "adaqp-reddit", "adaqp-yelp", "adaqp-ogbn-products", "adaqp-amazonproducts"):
        assert name in flat["train"], name
    assert "adaqp-reddit" in flat["reproduce"] and "kipf" not in flat["validate"]


def test_every_bundled_preset_loads_and_cites_its_source():
    names = presets.preset_names()
    assert {"kipf", "gat-cora", "adaqp-reddit", "adaqp-yelp", "adaqp-ogbn-products", "adaqp-amazonproducts"} <= set(names)
    parser = build_parser()
    for name in names:
        text = (presets.PRESET_DIR / f"{name}.yaml").read_text()
        assert text.startswith(f"# {name}:") and ("ICLR" in text or "raywan-110/AdaQP" in text), name
        for command in ("train", "validate", "reproduce"):
            if name not in presets.preset_names(command):
                continue
            flags = presets.load(name, command)
            if name == "gat-cora" and "heads" not in presets._key_map(presets.subparser(parser, "train")):
                continue  # the GAT flags are not in train yet: loading is all that can be checked
            presets.defaults_from(presets.subparser(parser, command), flags, command, name)


def test_adaqp_reference_numbers():
    a = parsed(["train", "reddit", "--config", "adaqp-ogbn-products"])
    assert (a.layers, a.hidden, a.dropout, a.lr, a.epochs, a.nprocs, a.replan_every) == (3, 256, 0.5, 0.01, 250, 4, 50)
    assert (a.schedule, a.bits, a.layer_norm) == ("adaqp", "adaptive", True)


def test_presets_are_package_data():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["adaqp.data"]
    for f in presets.PRESET_DIR.glob("*.yaml"):
        rel = f.relative_to(ROOT / "adaqp" / "data").as_posix()
        assert any(fnmatch.fnmatch(rel, pat) for pat in data), f"{rel} would not install with the wheel"
