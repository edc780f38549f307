"""Run one Python fuzz target under atheris (libFuzzer for Python, with coverage of the
project's code):

    .venv/bin/python tests/fuzz/atheris_main.py TARGET [libFuzzer flags] [corpus folders]

TARGET is a name in ``tests/fuzz/targets.py``; ``tests/fuzz/run.py`` (``make fuzz``) calls
this once per target with a time bound. Needs the ``fuzz`` extra (atheris).
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# Coverage comes from the modules imported inside this block; the targets import them
# lazily (so that pytest needs no atheris), hence every parser module is imported here.
with atheris.instrument_imports(include=["edge", "host_tools", "cobs", "targets"]):
    import cobs.cobs  # noqa: F401
    import targets

    import edge.config  # noqa: F401
    import edge.link.frame  # noqa: F401
    import edge.log_pages  # noqa: F401
    import edge.maint.agent  # noqa: F401
    import edge.maint.bundle  # noqa: F401
    import edge.readers  # noqa: F401
    import edge.sources.frames  # noqa: F401
    import host_tools.keys  # noqa: F401


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in targets.TARGETS:
        names = ", ".join(targets.TARGETS)
        sys.exit(f"usage: atheris_main.py TARGET [libFuzzer flags]; targets: {names}")
    target = targets.TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
