# Bedside BCG unit: everything a person repeats.
#   make test    lint + C unit tests (ASan/UBSan) + pytest   make lint   ruff check + format check
#   make run     a simulated night end to end            make bench  benchmarks
# The first target that needs Python creates .venv and installs the project into it.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BUILD := build

CC ?= cc
C_SRC := $(sort $(wildcard dsp_c/src/*.c))
C_HDR := $(wildcard dsp_c/include/*.h dsp_c/src/*.h)
C_TESTS := $(sort $(wildcard dsp_c/tests/test_*.c))
C_TEST_BINS := $(patsubst dsp_c/tests/%.c,$(BUILD)/%,$(C_TESTS))
CTEST_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
	-g -O1 -Wall -Wextra -Werror -std=c99 -ffp-contract=off -Idsp_c/include

.PHONY: all venv build ctest pytest test firmware-vm browser lint format bench eval model run clean fuzz powercut crashcheck soak arm64

all: build

venv: $(STAMP)

# Editable install: the cffi extension is built in place (dsp_c/_bcg_dsp*.so), so the
# package imports from the repo root; `make build` rebuilds it after C changes.
$(STAMP): setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev]"
	touch $@

build: $(STAMP)
	$(PY) setup.py -q build_ext --inplace
	$(PY) -c "import dsp_c._bcg_dsp as m; print('built', m.__file__)"

$(BUILD)/test_%: dsp_c/tests/test_%.c dsp_c/tests/check.h $(C_SRC) $(C_HDR)
	@mkdir -p $(BUILD)
	$(CC) $(CTEST_FLAGS) -o $@ $< $(C_SRC) -lm

# Runs every C test binary, then fails if any of them failed.
ctest: $(C_TEST_BINS)
	@failed=""; for t in $(C_TEST_BINS); do echo "== $$t"; ./$$t || failed="$$failed $$t"; done; \
	if [ -n "$$failed" ]; then echo "C tests failed:$$failed"; exit 1; fi

pytest: build firmware-vm browser
	$(PY) -m pytest -q

test: lint ctest pytest

# MicroPython (its WebAssembly port, run by node) for the firmware tests in tests/firmware/.
MPY_NPM_VERSION := 1.27.0
MPY_STAMP := $(BUILD)/node/.micropython-$(MPY_NPM_VERSION)

firmware-vm: $(MPY_STAMP)

$(MPY_STAMP):
	@command -v npm >/dev/null || { echo "npm not found: apt-get install nodejs npm" \
		"(the firmware tests run MicroPython under node)"; exit 1; }
	@mkdir -p $(BUILD)/node
	npm install --prefix $(BUILD)/node --no-audit --no-fund --no-save \
		@micropython/micropython-webassembly-pyscript@$(MPY_NPM_VERSION)
	touch $@

# Headless Chromium (Debian's package) for the night report's page tests: installed with
# apt-get where we may (root, Debian); otherwise the tests say how, and skip, except under
# CI (CI=1, as .ci/run sets), where a missing browser fails them.
browser:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing chromium (apt-get) for the report's page tests"; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
			{ apt-get update -q >/dev/null 2>&1 && \
			  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; } || \
			echo "could not install chromium: apt-get install chromium"; \
		else echo "chromium not found: apt-get install chromium (the report's page tests)"; fi; }

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: build
	$(PY) tests/bench/bench_dsp.py
	$(PY) tests/bench/real_recordings.py
	$(PY) tests/bench/bench_model.py
	$(PY) tests/bench/bench_pipeline.py
	$(PY) tests/bench/bench_lossy_link.py
	$(PY) tests/bench/store_size.py
	$(PY) tests/bench/bench_serial.py
	$(PY) tests/bench/bench_link.py
	$(PY) tests/bench/bench_seal.py
	$(PY) tests/bench/bench_flash.py
	$(PY) tests/bench/bench_logs.py

# Accuracy (docs/accuracy.md): what the unit stores, replayed through the whole pipeline, on
# held-out simulated nights, the real recordings, transformed recordings and machine signals,
# with the issue-15 targets as PASS/FAIL lines; then dsp_c against its peers. About 1 min.
eval: build
	@mkdir -p $(BUILD)
	$(PY) -m edge.eval --seeds held-out --nights 10 --json build/accuracy.json

# Fuzzing (tests/fuzz, docs/reliability.md): every parser of outside bytes under atheris and
# the C API under libFuzzer + ASan/UBSan, FUZZ_SECONDS each, one after the other; fails on
# a finding (the input is left in build/fuzz/). Needs clang (apt-get install clang: it
# brings libFuzzer) and atheris ($(PY) -m pip install -e ".[fuzz]").
FUZZ_SECONDS ?= 60
fuzz: build
	@command -v clang >/dev/null || { echo "make fuzz needs clang (libFuzzer): apt-get install clang"; exit 1; }
	@$(PY) -c "import atheris" 2>/dev/null || { echo "make fuzz needs atheris: $(PY) -m pip install -e '.[fuzz]'"; exit 1; }
	$(PY) tests/fuzz/run.py --seconds $(FUZZ_SECONDS)

# Power cuts (tests/reliability, docs/reliability.md): SIGKILL of the unit's processes at
# POWERCUT_CUTS seeded points (mid-batch, mid-flash, mid-unpack, mid-slot switch, mid-pull),
# restart and check after each; about 20 min for 1000. `make test` runs 30 of them.
POWERCUT_CUTS ?= 1000
POWERCUT_SEED ?= 1
powercut: build
	@mkdir -p $(BUILD)
	$(PY) tests/reliability/powercut.py --cuts $(POWERCUT_CUTS) --seed $(POWERCUT_SEED) \
		--json $(BUILD)/powercut.json

# Power cuts below the page cache (tests/reliability/crashcheck.py, docs/reliability.md):
# each operation runs once under the crashlog LD_PRELOAD shim (built with gcc into build/),
# then the same checks run on CRASH_CUTS modelled crash states (unsynced writes lost, or a
# seeded part of them reordered to disk); about 10 min. `make test` tries 12.
CRASH_CUTS ?= 1600
CRASH_MODEL ?= both
crashcheck: build
	@mkdir -p $(BUILD)
	$(PY) tests/reliability/powercut.py --model $(CRASH_MODEL) --cuts $(CRASH_CUTS) \
		--seed $(POWERCUT_SEED) --json $(BUILD)/crashcheck.json

# Soak: a virtual unit for SOAK_DAYS simulated days (sim at max speed, daily sessions) under
# status and pull requests; memory, open files, store size and latency must stay bounded.
SOAK_DAYS ?= 3
soak: build
	@mkdir -p $(BUILD)
	$(PY) tests/reliability/soak.py --days $(SOAK_DAYS) --json $(BUILD)/soak.json

# The unit on an emulated arm64 board (deploy/arm64/check.py, docs/install.md): a Debian
# bookworm arm64 root file system made with debootstrap, run under qemu-user and cached in
# build/arm64; the sdist installed there with no network as docs/install.md says; the main
# job's vitals against this machine's, bit for bit; a trial boot flashed from here; the unit's
# tests. As root; apt-gets debootstrap and qemu-user-static when missing. 11.5 min from a
# cold cache (debootstrap 3 of them), about 9 after; logs in build/arm64/logs.
arm64: build
	$(PY) deploy/arm64/check.py

# The signal-quality model (models/train.py): TensorFlow in its own venv, never in .venv.
# Writes models/bcg_quality.tflite and its companions; then update models/MODEL_CARD.md.
TRAIN_VENV := .venv-train
TRAIN_STAMP := $(TRAIN_VENV)/.installed

$(TRAIN_STAMP): setup.py pyproject.toml
	$(PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_VENV)/bin/python -m pip install --upgrade pip
	$(TRAIN_VENV)/bin/python -m pip install -e ".[train]"
	touch $@

model: $(TRAIN_STAMP) $(STAMP)
	@mkdir -p $(BUILD)
	TF_USE_LEGACY_KERAS=1 $(TRAIN_VENV)/bin/python -m models.train --out models --cache $(BUILD)
	$(PY) -m models.evaluate --json $(BUILD)/quality_eval.json

# A simulated 8-hour night at max speed through the whole pipeline (DSP, quality gate,
# vitals, store): prints the summary, writes build/night.db and the report build/night.html.
RUN_SEED ?= 42
run: build
	@mkdir -p $(BUILD)
	rm -f $(BUILD)/night.db $(BUILD)/night.db-wal $(BUILD)/night.db-shm
	$(PY) -m edge run --source sim:$(RUN_SEED) --speed max --duration 8h \
		--db $(BUILD)/night.db --report $(BUILD)/night.html

clean:
	rm -rf $(BUILD) *.egg-info dsp_c/_bcg_dsp.c dsp_c/_bcg_dsp.o dsp_c/_bcg_dsp*.so
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +
