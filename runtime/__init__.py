"""adaqp.runtime: torch.distributed training that executes a HaloPlan + BitPlan + Schedule.

The only component that imports ``torch.distributed``. Filled in by the runtime issue.
"""
