# Fresh Debian machine -> working tvm-fused. `make test` and `make demo` install what they need.
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PKGS := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all setup toolchain venv test demo bench wheel clean

all: test

toolchain:
	@if ! command -v arm-none-eabi-gcc >/dev/null || ! command -v qemu-system-arm >/dev/null \
	    || [ ! -e /usr/lib/arm-none-eabi/newlib ]; then \
	  echo "== installing $(APT_PKGS)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PKGS); \
	fi

$(VENV)/.installed: setup.py
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@# optional: TFLite Micro's host interpreter reports TFLM's arena for the arena comparison tests
	$(PY) -m pip install -q tflite-micro || echo "== tflite-micro not installed: the TFLM arena comparisons will be skipped"
	touch $@

venv: $(VENV)/.installed

setup: toolchain venv

# one pytest worker per core (pytest-xdist): the suite is mostly TVM/LLVM host builds and gcc
test: setup
	$(PY) -m pytest -q -n auto tests

demo: setup
	$(VENV)/bin/tvm-fused demo

bench: setup
	$(PY) benchmarks/memory.py

# The installable wheel (firmware template and py.typed inside, as package data) -> dist/
wheel: venv
	$(PY) -m pip wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) build dist *.egg-info
