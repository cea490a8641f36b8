"""adaqp.runtime: torch.distributed training that executes a HaloPlan + BitPlan + Schedule.

The only component that imports ``torch.distributed`` (an import-linter contract in
``pyproject.toml`` keeps it so).
"""
