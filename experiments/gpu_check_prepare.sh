#!/usr/bin/env bash
# Prepare .whl/ for experiments/gpu_check.sh (run here, with network, right before a GPU run):
# the wheels the GPU machine lacks (simpy, pulp, pymetis; python 3.12, manylinux x86_64) and a
# wheel of adaqp built from a clean copy of this working tree (tracked + untracked, not ignored:
# a stale build/ folder would otherwise leak deleted modules into the wheel), plus a stamp of the
# sources so that gpu_check.sh can tell when the tree changed after the wheel was built.
#   bash experiments/gpu_check_prepare.sh      # ~19 MB, mostly pulp's bundled CBC solver
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
PLAT="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64"
ls .whl/pymetis-*.whl >/dev/null 2>&1 || python3 -m pip download -q --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation cp $PLAT -d .whl pymetis
ls .whl/simpy-*.whl .whl/pulp-*.whl >/dev/null 2>&1 || python3 -m pip download -q --no-deps \
  --only-binary=:all: --python-version 3.12 --implementation py --platform any -d .whl simpy pulp
# pytest for the GPU-only tests, kept apart (.whl/test/): only the test run puts them on the path
mkdir -p .whl/test
ls .whl/test/pytest-*.whl >/dev/null 2>&1 || python3 -m pip download -q --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation py --platform any -d .whl/test pytest pluggy iniconfig packaging pygments
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
git ls-files -co --exclude-standard -z | xargs -0 -I{} cp --parents {} "$tmp" 2>/dev/null || true
rm -f .whl/adaqp-*.whl
python3 -m pip wheel -q --no-deps -w "$PWD/.whl" "$tmp"
bash experiments/gpu_check.sh --stamp > .whl/SOURCES.sha256
ls -la .whl && du -sh .whl
