#!/usr/bin/env bash
# The GPU check on the GPU machine (python 3.12 + torch/triton there; no network; simpy, pulp and
# pymetis come as wheels in .whl/, prepared by experiments/gpu_check_prepare.sh):
#   OUT=/some/dir bash experiments/gpu_check.sh [--ranks 2,4]     # ~4 min on one H200
# Installs the carried wheels into /tmp/site, then runs adaqp.experiments.gpu_check with output to
# $OUT. If the sources changed since the adaqp wheel was built, the current tree is copied over the
# installed package (same layout as the wheel: runtime/ -> adaqp/runtime, ...), so what runs is
# always this tree. --stamp prints the sources' hash (used by the prepare script).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
PKGS="adaqp runtime simulator costmodel solver experiments"
stamp() { find $PKGS -type f \( -name '*.py' -o -name '*.json' -o -name '*.yaml' \) -not -path '*/__pycache__/*' \
            | LC_ALL=C sort | xargs cat | sha256sum | cut -d' ' -f1; }
if [ "${1:-}" = "--stamp" ]; then stamp; exit 0; fi
OUT="${OUT:-$ROOT/gpu-check-out}"
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "gpu_check.sh: installing .whl/ failed" >&2; exit 3; }
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
if [ "$(stamp)" != "$(cat .whl/SOURCES.sha256 2>/dev/null)" ]; then
  echo "gpu_check.sh: the tree changed since the adaqp wheel was built; overlaying the current sources" >&2
  cp -r adaqp/. /tmp/site/adaqp/
  for d in runtime simulator costmodel solver experiments; do mkdir -p /tmp/site/adaqp/$d; cp -r $d/. /tmp/site/adaqp/$d/; done
fi
cd /tmp  # not the repository root: its adaqp/ folder would shadow the installed package
python3 -c "import adaqp.runtime, simpy, pulp, pymetis, torch; print('adaqp from', adaqp.__file__, '| torch', torch.__version__)"
PYTHONUNBUFFERED=1 timeout "${CHECK_TIMEOUT_S:-330}" python3 -m adaqp.experiments.gpu_check --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_check.log"
rc="${PIPESTATUS[0]}"
# then the tests that skip without a GPU (GPU_TESTS="" skips this; add files to run more)
GPU_TESTS="${GPU_TESTS-tests/runtime/test_staged_transport.py tests/runtime/profiling/test_gpu.py tests/runtime/test_placement.py}"
if [ -n "$GPU_TESTS" ] && ls "$ROOT"/.whl/test/pytest-*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site-test "$ROOT"/.whl/test/*.whl
  # the pytest script, not `python -m pytest` (that puts the repository root, with its adaqp/, first on
  # sys.path); the root goes last, for the test modules the spawned ranks import by name
  (cd "$ROOT" && PYTHONPATH=/tmp/site:/tmp/site-test:"$ROOT" timeout 120 python3 /tmp/site-test/bin/pytest -q -rs \
     -p no:cacheprovider $GPU_TESTS) 2>&1 | tee "$OUT/gpu_tests.log"
fi
exit "$rc"
