"""``python -m edge.boot --health --state DIR --source SPEC``: the boot manager's health check
of a trial slot, by the name every unit's installed boot manager runs it in the slot.

The boot manager itself is :mod:`edge.maint.boot`. It is never flashed (it is the installed
software's), and it starts the check in the trial slot's code with ``-m edge.boot``: a
bundle without this module would fail every health check on a unit already in the field, so
it stays here, whatever the layout around it.
"""

from __future__ import annotations

from .maint.boot import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
