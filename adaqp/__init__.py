"""adaqp: plan, simulate and run distributed full-graph GNN training with adaptive message
quantization and communication/computation overlap (AdaQP, MLSys 2023).

Core types live here; the components are subpackages: ``adaqp.runtime``, ``adaqp.simulator``,
``adaqp.costmodel``, ``adaqp.solver`` and ``adaqp.experiments``.
"""

__version__ = "0.1.0"
