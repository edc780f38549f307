"""The laptop's tools for bedside BCG units: the ``bedside-host`` command line.

The wire protocol is :mod:`edge.link`, shared with the unit's agent; this package adds keys,
ports, the virtual unit and the commands (see :mod:`host_tools.cli`).
"""
