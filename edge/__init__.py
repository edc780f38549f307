"""edge: the runtime of the bedside unit (sources, pipeline, store, agent, boot manager).

Subpackages so far: :mod:`edge.sim` (the night simulator), :mod:`edge.readers` (recording
files), :mod:`edge.eval` (the accuracy harness).
"""
