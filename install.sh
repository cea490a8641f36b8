#!/usr/bin/env bash
# Set-up on a fresh machine: installs adaqp (editable) with its dependencies.
#   bash install.sh          # the package and everything `adaqp` needs
#   bash install.sh --dev    # plus the test tools
# torch: an existing install (for example a CUDA build) is kept as it is. Where torch is absent
# we ask for the pinned CPU build (TORCH_SPEC overrides), because an unpinned `torch` requirement
# would pull a multi-GB CUDA build on a machine that has no GPU.
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "install.sh: torch not found; installing ${TORCH_SPEC:-torch==2.13.0}" >&2
  "$PY" -m pip install -q --disable-pip-version-check "${TORCH_SPEC:-torch==2.13.0}"
fi
extras=""
if [ "${1:-}" = "--dev" ]; then extras="[dev]"; fi
"$PY" -m pip install -q --disable-pip-version-check -e ".${extras}"
