"""Test-wide settings: headless plots, and small shared fixtures."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
