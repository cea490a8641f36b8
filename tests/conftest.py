"""Test-wide settings: headless plots, and tests/helpers importable as ``helpers``."""

import os
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, str(Path(__file__).parent))

# Without a GPU, Triton kernels run only in its interpreter (numpy on CPU tensors). The switch is
# read when a kernel is defined, so it is set before any test imports adaqp.quant_triton.
import torch  # noqa: E402 - after the settings above

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
