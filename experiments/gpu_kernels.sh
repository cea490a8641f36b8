#!/usr/bin/env bash
# The fused-kernel check on one GPU: byte-identity tests of the compiled Triton kernels against
# the eager torch path, then the full kernel benchmark (experiments/bench_quant.py).
#   OUT=results_dir bash experiments/gpu_kernels.sh
# Needs torch + triton on the machine; installs adaqp from this checkout (no network, no deps).
set -uo pipefail
export PYTHONUNBUFFERED=1
REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${OUT:-$REPO/gpu-out}"
mkdir -p "$OUT"
python3 -m pip install -q --no-deps --no-build-isolation --no-index --target /tmp/adaqp-site "$REPO" \
  >"$OUT/install.log" 2>&1 || { tail -5 "$OUT/install.log"; exit 1; }
export PYTHONPATH=/tmp/adaqp-site${PYTHONPATH:+:$PYTHONPATH}
cd /tmp  # not the checkout: its adaqp/ folder would shadow the installed package
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$OUT/gpu.txt"
python3 -m pytest -q -p no:cacheprovider "$REPO/tests/core/test_quant_triton.py" \
  "$REPO/tests/core/test_quant.py" 2>&1 | tail -8 | tee "$OUT/tests.log"
python3 -m adaqp.experiments.bench_quant ${BENCH_ARGS:-} --out "$OUT" 2>&1 | tee "$OUT/bench.log"
