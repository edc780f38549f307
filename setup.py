"""Packaging for the bedside BCG unit software.

The C DSP core (dsp_c/src/*.c) is compiled into ``dsp_c._bcg_dsp`` by cffi in API
out-of-line mode; see dsp_c/build_ffi.py.
"""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent

# Only packages that exist in the tree: edge, host_tools and models are picked up when they land.
TOP_LEVEL = ("dsp_c", "edge", "host_tools", "models")
PACKAGES = find_packages(include=[f"{name}{sub}" for name in TOP_LEVEL for sub in ("", ".*")])

TEST_REQUIRES = ["pytest", "hypothesis", "scipy"]
# The laptop's optional part: Parquet export of pulled logs (bedside-host logs export) and
# the queries on it (bedside-host query). DuckDB writes and reads the Parquet files, so no
# pyarrow; pinned: the dataset's files and the documented query output are its.
HOST_REQUIRES = ["duckdb==2.0.0"]

setup(
    name="bedside-bcg",
    version="0.1.0",
    description="Contactless bedside BCG vital-signs monitor: DSP core, unit runtime, host tools",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8")
    if (ROOT / "README.md").exists()
    else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=PACKAGES,
    package_data={
        "dsp_c": ["include/*.h", "src/*.c", "src/*.h"],
        "models": ["*.tflite", "*.sha256", "*.npz", "*.json", "*.md"],
    },
    include_package_data=False,
    setup_requires=["cffi>=1.15"],
    cffi_modules=["dsp_c/build_ffi.py:ffibuilder"],
    install_requires=[
        "numpy>=1.23,<2",  # tflite-runtime is built against numpy 1.x
        "cffi>=1.15",
        # The sensor link (edge/sources/serial.py, frames.py).
        "pyserial>=3.5",
        "cobs>=1.2",
        # The maintenance link and bedside-host (edge/link, edge/maint, host_tools):
        # Ed25519 keys, the command line, progress bars.
        "cryptography>=42",
        "click>=8.1",
        "rich>=13",
        # The quality model's runtime (edge/model.py): tflite-runtime has no wheels past
        # Python 3.11; its successor ai-edge-litert takes over there.
        'tflite-runtime>=2.14; python_version < "3.12"',
        'ai-edge-litert>=1.2; python_version >= "3.12"',
    ],
    extras_require={
        # What the test suites need (scipy is the reference the DSP core is checked against).
        "test": TEST_REQUIRES,
        # Tests, lint and the evaluation: scipy as reference, peers (neurokit2, heartpy,
        # PyWavelets), file-format parity (pyedflib, wfdb). A superset of "test". Pinned:
        # ruff (format is checked) and the peers (the tests bound their accuracy).
        "dev": [
            *TEST_REQUIRES,
            *HOST_REQUIRES,
            "ruff==0.17.6",
            "neurokit2==0.2.12",
            "heartpy==1.2.7",
            "PyWavelets==1.9.0",
            "pyedflib==0.1.42",
            "wfdb==4.3.1",
        ],
        # make fuzz (tests/fuzz): atheris for the Python targets. Not in "dev": it has
        # wheels for x86-64 Linux only and elsewhere builds from source with clang, which
        # make fuzz needs anyway (libFuzzer for the C harness). 3.1.0 is not in our index.
        "fuzz": [*TEST_REQUIRES, "atheris==3.0.0"],
        # The laptop tools' extras: pip install "bedside-bcg[host]".
        "host": HOST_REQUIRES,
        # Training the quality model (make model, models/train.py), in its own venv.
        "train": [
            "tensorflow-cpu==2.21.0",
            "tensorflow-model-optimization==0.8.1",
            "tf_keras==2.21.0",
        ],
    },
    entry_points={
        "console_scripts": ["bedside = edge.cli:main", "bedside-host = host_tools.cli:main"]
    },
    zip_safe=False,
)
