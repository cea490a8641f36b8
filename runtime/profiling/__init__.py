"""``adaqp profile``'s micro-benchmarks: they run the runtime's own code paths on this machine and
fit what they time into a :class:`~adaqp.costmodel.profile.HardwareProfile`, the JSON the cost
model reads (the cost model itself never runs the runtime).

* :mod:`.profiler`: the compute ops (SpMM, GEMM, element-wise, message coding, Adam) timed through
  the runtime's functions, the size grids, :func:`~.profiler.measure` (a whole profile) and
  :func:`~.profiler.measure_shapes` (``adaqp profile --for``);
* :mod:`.ranks`: links, all-reduce, interference, sync delays and co-running slow-downs, timed on a
  real process group of spawned ranks;
* :mod:`.gpu`: k ranks sharing one GPU through the host-staged exchange (``--device cuda``);
* :mod:`.remeasure`: some ops of an existing profile timed again at its sizes (``adaqp profile --update``).
"""
