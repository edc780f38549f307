"""cffi build script for the C DSP core (API out-of-line mode).

The declarations exist once, in dsp_c/include/bcg_dsp.h. This script reads that header
and turns it into a cffi ``cdef``:

* comments, ``#include`` and conditional lines (``#ifndef`` / ``#endif`` ...) are dropped;
* ``#define NAME <integer>`` lines are kept, ``#define NAME`` without a value is dropped,
  ``#define NAME <other expression>`` becomes ``#define NAME ...`` (value from the compiler),
  function-like macros are dropped;
* the body of every ``struct`` / ``union`` definition becomes ``{ ...; }``: a partial struct
  whose size and layout come from the C compiler, so the header may use any C in its fields.

All dsp_c/src/*.c files (sorted) are compiled into the extension ``dsp_c._bcg_dsp``.

Used by setup.py (``cffi_modules=["dsp_c/build_ffi.py:ffibuilder"]``); can also be run
directly (``python dsp_c/build_ffi.py``) to build the extension in place.
"""

from __future__ import annotations

import re
from pathlib import Path

import cffi

HERE = Path(__file__).resolve().parent
HEADER = HERE / "include" / "bcg_dsp.h"
SRC_DIR = HERE / "src"

# Portable flags only (the unit is an aarch64 Raspberry Pi): -ffp-contract=off keeps the
# compiler from fusing a*b+c into FMA, so results are bit-identical across machines and equal
# scipy's arithmetic.
EXTRA_COMPILE_ARGS = ["-O2", "-std=c99", "-ffp-contract=off"]

# Binding-only helpers: the header's structs are opaque to cffi (see module docstring), so
# the few fields Python reads are copied out by these accessors. Not part of the C API.
BINDING_CDEF = """
void bcg_ffi_sos_get_state(const bcg_sos_filter *st, double *zi);
"""
BINDING_SOURCE = """
static void bcg_ffi_sos_get_state(const bcg_sos_filter *st, double *zi)
{
    int s;
    for (s = 0; s < st->n_sections; s++) {
        zi[2 * s] = st->zi[s][0];
        zi[2 * s + 1] = st->zi[s][1];
    }
}
"""

_INT_RE = re.compile(r"^[+-]?(0[xX][0-9a-fA-F]+|\d+)[uUlL]*$")
_STRUCT_RE = re.compile(r"\b(struct|union)\s+(\w+\s*)?\{")


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", "", text)


def _join_continuations(text: str) -> str:
    return re.sub(r"\\\n", " ", text)


def _preprocessor_line(line: str) -> str | None:
    """Return the cdef form of a preprocessor line, or None to drop it."""
    body = line.strip()[1:].strip()
    if not body.startswith("define"):
        return None  # include, ifndef, ifdef, if, else, endif, pragma, undef, error
    parts = body[len("define") :].strip().split(None, 1)
    if not parts or "(" in parts[0]:
        return None  # function-like macro
    name = parts[0]
    if len(parts) == 1:
        return None  # include guard or flag
    value = parts[1].strip()
    if _INT_RE.match(value):
        return f"#define {name} {value}"
    return f"#define {name} ..."


def _opaque_struct_bodies(text: str) -> str:
    """Replace the body of every struct/union definition with ``{ ...; }``."""
    out = []
    pos = 0
    while True:
        match = _STRUCT_RE.search(text, pos)
        if match is None:
            out.append(text[pos:])
            return "".join(out)
        open_brace = match.end() - 1
        depth = 0
        close = -1
        for i in range(open_brace, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    close = i
                    break
        if close < 0:
            raise ValueError(f"{HEADER.name}: unbalanced braces after {match.group(0)!r}")
        out.append(text[pos:open_brace])
        out.append("{ ...; }")
        pos = close + 1


def header_to_cdef(header_text: str) -> str:
    """Turn the C header text into a cffi cdef string."""
    text = _join_continuations(_strip_comments(header_text))
    lines = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            kept = _preprocessor_line(line)
            if kept is not None:
                lines.append(kept)
        elif line.strip():
            lines.append(line.rstrip())
    return _opaque_struct_bodies("\n".join(lines)) + "\n"


def c_sources() -> list[str]:
    """All C sources of the core, sorted, as paths relative to the project root."""
    root = HERE.parent
    return [str(p.relative_to(root)) for p in sorted(SRC_DIR.glob("*.c"))]


def make_ffibuilder() -> cffi.FFI:
    builder = cffi.FFI()
    builder.cdef(header_to_cdef(HEADER.read_text(encoding="utf-8")) + BINDING_CDEF)
    builder.set_source(
        "dsp_c._bcg_dsp",
        '#include "bcg_dsp.h"\n' + BINDING_SOURCE,
        sources=c_sources(),
        include_dirs=[str(HEADER.parent.relative_to(HERE.parent))],
        extra_compile_args=EXTRA_COMPILE_ARGS,
        libraries=["m"],
    )
    return builder


ffibuilder = make_ffibuilder()

if __name__ == "__main__":
    import os

    os.chdir(HERE.parent)
    ffibuilder.compile(verbose=True)
