"""The package installs as one namespace, `adaqp`, from a wheel, outside the source tree."""

import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ("runtime", "simulator", "costmodel", "solver", "experiments")


def _declared():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return set(cfg["packages"]), cfg["package-dir"]


def test_every_source_package_is_declared():
    packages, package_dir = _declared()
    found = set()
    for top, prefix in [("adaqp", "adaqp")] + [(c, f"adaqp.{c}") for c in COMPONENTS]:
        assert package_dir[prefix] == top
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top).parts
            found.add(".".join((prefix, *rel)))
    assert found == packages, f"undeclared: {found - packages}, stale: {packages - found}"


@pytest.mark.slow
def test_wheel_installs_and_imports_outside_source_tree(tmp_path):
    wheel_dir, site = tmp_path / "wheel", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(wheel_dir), str(ROOT)],
                   check=True, cwd=tmp_path)
    wheel = next(wheel_dir.glob("adaqp-*.whl"))
    subprocess.run(pip + ["install", "--no-deps", "--target", str(site), str(wheel)], check=True, cwd=tmp_path)
    # Only `adaqp` (and its metadata) at the top of site-packages: no stray `runtime`, `solver`...
    tops = {p.name for p in site.iterdir() if not p.name.endswith((".dist-info", ".data"))} - {"bin"}
    assert tops == {"adaqp"}
    packages, _ = _declared()
    code = (
        "import importlib, sys\n"
        f"mods = {sorted(packages)!r}\n"
        "for m in mods:\n"
        "    f = importlib.import_module(m).__file__\n"
        f"    assert f.startswith({str(site)!r}), (m, f)\n"
        "from adaqp.data.bundled import load_bundled\n"
        "assert load_bundled('cora').num_nodes == 2708\n"
        "print('ok', len(mods))\n"
    )
    # -S skips .pth files, so the editable install's import hook cannot answer for `adaqp`;
    # site-packages stays on the path (after the wheel) only for numpy and friends.
    purelib = sysconfig.get_paths()["purelib"]
    env = {"PYTHONPATH": f"{site}:{purelib}", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok")


def test_the_project_cites_no_document_it_does_not_contain():
    root = Path(__file__).resolve().parents[1]
    hits = [str(p.relative_to(root)) for d in ("adaqp", "costmodel", "simulator", "solver", "runtime", "experiments", "docs")
            for p in (root / d).rglob("*") if p.is_file() and p.suffix in (".py", ".md", ".json", ".yaml")
            and "DESIGN.md" in p.read_text(errors="ignore")]
    assert not hits and "DESIGN.md" not in (root / "README.md").read_text()
