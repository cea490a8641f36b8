"""adaqp.costmodel: measured hardware profiles (versioned data) and the duration functions
shared by the solver and the simulator.
"""
