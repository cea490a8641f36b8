"""Run import-linter's contracts (``[tool.importlinter]`` in pyproject.toml) on this project.

Why a copy: import-linter reads the import graph by walking the root package's directory, and in
the source tree ``adaqp/`` holds only the core: ``adaqp.runtime``, ``adaqp.solver``, ... live in
top-level folders that ``[tool.setuptools.package-dir]`` maps into the package. :func:`wheel_tree`
copies the ``.py`` files into the shape a wheel installs (``adaqp/runtime/``, ``adaqp/solver/``,
...), and :func:`lint_imports` runs the ``lint-imports`` command there, against the project's
pyproject.toml. ``torch`` is a root package too (so that ``torch.distributed`` is a node); its
files are read where it is installed.

    python tests/helpers/layers.py   # exit status and report of lint-imports
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"


def package_dirs() -> dict[str, Path]:
    """``{package: source folder}`` for every entry of ``[tool.setuptools.package-dir]``."""
    cfg = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-dir"]
    return {pkg: ROOT / folder for pkg, folder in cfg.items()}


def _only_python(folder: str, names: list[str]) -> list[str]:
    """copytree's ignore: everything but ``.py`` files and the folders that may hold them."""
    return [n for n in names if n == "__pycache__" or (not n.endswith(".py") and not Path(folder, n).is_dir())]


def wheel_tree(dest: Path) -> Path:
    """The package's ``.py`` files under ``dest`` as a wheel installs them; returns ``dest``.
    File times are kept (``copy2``), so import-linter's cache stays valid between copies."""
    for pkg, src in sorted(package_dirs().items()):  # parents first: adaqp before adaqp.runtime
        shutil.copytree(src, dest.joinpath(*pkg.split(".")), ignore=_only_python, copy_function=shutil.copy2,
                        dirs_exist_ok=True)
    return dest


def lint_imports(tree: Path, cache_dir: Path | None = None, timeout_s: float = 120.0) -> subprocess.CompletedProcess:
    """``lint-imports`` run in ``tree`` (it puts its working folder first on ``sys.path``, so
    ``adaqp`` is the copy there) with the project's contracts; output captured as text."""
    cmd = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())",
           str(PYPROJECT), "--no-logo"]
    cmd += ["--cache-dir", str(cache_dir)] if cache_dir is not None else ["--no-cache"]
    return subprocess.run(cmd, cwd=tree, capture_output=True, text=True, timeout=timeout_s)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="adaqp-layers-") as tmp:
        res = lint_imports(wheel_tree(Path(tmp)))
    sys.stdout.write(res.stdout)
    sys.stderr.write(res.stderr)
    return res.returncode


if __name__ == "__main__":
    raise SystemExit(main())
