"""dsp_c/build_ffi.py: the header -> cdef translation must handle any header in the house style."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import cffi
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def build_ffi() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_ffi", ROOT / "dsp_c" / "build_ffi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SYNTHETIC_HEADER = r"""
/* multi-line
 * comment with a fake declaration: int nope(void); */
#ifndef X_H
#define X_H
#include <stdint.h>
#define FLAG_ONLY
#define CAP 64          /* a size */
#define NEG -3
#define HEX 0x10u
#define EXPR (CAP * 2)
#define SQUARE(x) ((x) * (x))
#define LONG_MACRO 1 + \
    2
typedef enum { A_OK = 0, A_BAD = 1 } a_status;   // trailing comment
typedef enum a_mode { MODE_X = 0, MODE_Y } a_mode;
typedef struct inner { int a; struct { double b[CAP]; } nested; } inner;
typedef struct outer {
    inner in[2];
    int64_t idx[CAP * 2];
    union { double d; int64_t i; } u;
} outer;
a_status a_init(outer *o, const double *x, int64_t *beats, size_t n, a_mode m);
void a_reset(outer *o);
#endif
"""


def test_synthetic_header_parses(build_ffi: ModuleType) -> None:
    cdef = build_ffi.header_to_cdef(SYNTHETIC_HEADER)
    assert "nope" not in cdef and "#include" not in cdef and "#endif" not in cdef
    assert "FLAG_ONLY" not in cdef and "SQUARE" not in cdef
    assert "#define CAP 64" in cdef and "#define NEG -3" in cdef and "#define HEX 0x10u" in cdef
    assert "#define EXPR ..." in cdef and "#define LONG_MACRO ..." in cdef
    assert "typedef struct inner { ...; } inner;" in cdef
    assert "typedef struct outer { ...; } outer;" in cdef
    assert "double b" not in cdef and "union" not in cdef
    ffi = cffi.FFI()
    ffi.cdef(cdef)  # cffi accepts it
    assert ffi.typeof("a_status").kind == "enum"


def test_project_header_translation_is_loaded(build_ffi: ModuleType) -> None:
    from dsp_c._bcg_dsp import ffi, lib

    cdef = build_ffi.header_to_cdef(build_ffi.HEADER.read_text(encoding="utf-8"))
    assert "typedef struct bcg_sos_filter { ...; } bcg_sos_filter;" in cdef
    assert lib.BCG_MAX_SECTIONS == 16
    assert ffi.sizeof("bcg_sos_filter") >= 16 * 8 * 8  # layout from the compiler
    assert [Path(p).name for p in build_ffi.c_sources()] == sorted(
        p.name for p in (ROOT / "dsp_c" / "src").glob("*.c")
    )
