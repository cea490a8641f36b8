"""The layers of pyproject.toml's import-linter contracts hold, and a contract breaks when a module
crosses its layer (so that a pass is not the linter seeing nothing)."""

import re
from pathlib import Path

import pytest

pytest.importorskip("importlinter", reason="import-linter is a dev dependency: pip install -e '.[dev]'")

from helpers.layers import lint_imports, package_dirs, wheel_tree  # tests/helpers, via tests/conftest.py

CONTRACTS = ("Only the CLI and the experiments import the runtime",
             "Only the runtime, the CLI and the experiments import torch.distributed",
             "Only the CLI imports the experiments",
             "The runtime does not import the CLI")

# One module per contract, each placed where its imports are forbidden, lazy imports included
# (a function's import counts as the module's).
PROBES = {
    "adaqp/costmodel/layer_probe_runtime.py": "def f():\n    from adaqp.runtime import aggregate\n",
    "adaqp/solver/layer_probe_distributed.py": "import torch.distributed as dist\n",
    "adaqp/simulator/layer_probe_experiments.py": "def f():\n    import adaqp.experiments.whatif\n",
    "adaqp/runtime/layer_probe_cli.py": "from adaqp.cli import report\n",
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """import-linter's cache, shared: torch's ~2,000 files are read once for both runs."""
    return tmp_path_factory.mktemp("import-linter-cache")


def _verdicts(stdout: str) -> dict[str, str]:
    return {name: m.group(1) for name in CONTRACTS
            if (m := re.search(re.escape(name) + r" (KEPT|BROKEN)", stdout))}


def test_every_contract_is_kept(tmp_path, cache):
    tree = wheel_tree(tmp_path / "tree")
    res = lint_imports(tree, cache)
    assert res.returncode == 0, res.stdout + res.stderr
    assert _verdicts(res.stdout) == {name: "KEPT" for name in CONTRACTS}, res.stdout


def test_a_module_that_crosses_its_layer_breaks_its_contract(tmp_path, cache):
    tree = wheel_tree(tmp_path / "tree")
    for rel, code in PROBES.items():
        (tree / rel).write_text(code)
    res = lint_imports(tree, cache)
    assert res.returncode != 0
    assert _verdicts(res.stdout) == {name: "BROKEN" for name in CONTRACTS}, res.stdout
    for rel in PROBES:  # each named as the offender
        assert Path(rel).with_suffix("").as_posix().replace("/", ".") in res.stdout, rel


def test_the_copy_is_the_wheels_layout(tmp_path):
    tree = wheel_tree(tmp_path / "tree")
    for pkg in package_dirs():
        assert (tree.joinpath(*pkg.split(".")) / "__init__.py").is_file(), pkg
    assert not list(tree.rglob("*.json")) and not list(tree.rglob("__pycache__"))
    # the graph sees the sub-packages' modules, not only adaqp/'s own folder
    assert (tree / "adaqp/runtime/aggregate.py").is_file() and (tree / "adaqp/solver/bnb.py").is_file()
