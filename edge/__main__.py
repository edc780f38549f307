"""``python -m edge``: the ``bedside`` command line (see :mod:`edge.cli`)."""

from .cli import main

raise SystemExit(main())
