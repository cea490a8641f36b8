"""adaqp.solver: the bit-width MILP (PuLP) that writes a BitPlan. Filled in by the solver issue."""
