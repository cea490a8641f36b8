"""adaqp.simulator: a SimPy discrete-event model of a cluster that predicts epoch time.

It plays the epoch program of :mod:`adaqp.costmodel.program` — the same steps and durations the
analytic model sums — on every rank as a SimPy process, over shared compute resources and a fluid
flow network built from :func:`adaqp.costmodel.network.resources`. Where the analytic model
assumes perfect pipelining and synchronised ranks, the simulator lets flows contend in time.
Depends on adaqp core and adaqp.costmodel only.

    from adaqp.simulator import simulate
    r = simulate(stats, shape, "adaqp", cluster, profile, bits=4)
    r.epoch_time_s, r.phases_s, r.critical_path_lines(), r.utilisation
"""

from adaqp.simulator.api import simulate, simulate_program
from adaqp.simulator.result import SimResult
from adaqp.simulator.synthetic import synthetic_stats
from adaqp.simulator.trace import chrome_trace

__all__ = ["simulate", "simulate_program", "SimResult", "synthetic_stats", "chrome_trace"]
