"""edge: the runtime of the bedside unit (sources, pipeline, store, agent, boot manager).

Subpackages so far: :mod:`edge.sim` (the night simulator), :mod:`edge.readers` (recording
files), :mod:`edge.eval` (the accuracy harness), :mod:`edge.maint` (agent, boot manager,
bundles, slots).

``bedside run`` (:mod:`edge.cli`, also ``python -m edge``): :mod:`edge.sources` ->
:mod:`edge.pipeline` (dsp_c, :mod:`edge.quality`, :mod:`edge.vitals`, :mod:`edge.events`)
-> :mod:`edge.store`; settings from :mod:`edge.config`.
"""
