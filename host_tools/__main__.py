"""``python -m host_tools``: the same as ``bedside-host``."""

from host_tools.cli import main

raise SystemExit(main())
