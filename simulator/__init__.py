"""adaqp.simulator: a SimPy discrete-event model of a cluster that predicts epoch time.

Filled in by the simulator issue; depends on adaqp core and adaqp.costmodel only.
"""
