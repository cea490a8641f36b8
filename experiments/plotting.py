"""matplotlib for the experiments, headless (the Agg backend: no display on these machines)."""

from __future__ import annotations


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
