"""Test-wide settings: headless plots, and tests/helpers importable as ``helpers``."""

import os
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, str(Path(__file__).parent))
