"""adaqp.experiments: validation, what-if sweeps, reproduction, benchmarks and plots.

Depends on everything; nothing but the CLI imports it.
"""
