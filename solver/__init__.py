"""adaqp.solver: a time budget and a HaloPlan in, a BitPlan (a width per group of message rows) out.

Read in this order:

* :mod:`.plan`: the entry point (``solve_bitplan``, ``adaqp plan``): groups, model, solve, BitPlan;
* :mod:`.groups`: each channel's rows sorted by variance weight and cut into groups, one width each;
* :mod:`.model`: the epoch time as a sum of max-of-linear terms in the choices ``x`` (group at a
  width) and ``y`` (a rank pays a coding op's per-call constant), built from the cost model;
* :mod:`.greedy`: a quick plan, the fallback and the MILP's warm start;
* :mod:`.milp`: the MILP over that model, solved by CBC (:mod:`.cbc`) or HiGHS, with the ``y``
  fixed first by :mod:`.patterns` (the LP relaxation with ``y`` free is weak);
* :mod:`.bnb`: branch and bound over ``y`` for a certified gap (``adaqp plan --certify``), on the
  node relaxations of :mod:`.compact` (channels' totals) or :mod:`.nodelp` (per group), with
  :mod:`.timefloor` dropping nodes that cannot meet the budget and :mod:`.lpstatus` deciding what
  a HiGHS status proves.
"""
