# superv: `make demo` sets everything up and runs the bundled example;
# `make test` runs the tests; `make bench` compares native, strace and superv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CC     ?= cc
CFLAGS ?= -O2 -Wall

.PHONY: demo test bench install compiled examples clean

install: $(BIN)/superv

$(BIN)/superv: pyproject.toml setup.py native/launcher.c native/kernelmod.c native/fastpath.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# An editable install leaves our modules uncompiled, and with
# PYTHONDONTWRITEBYTECODE set every superv run would compile them again
# (~80 ms of start-up).  compileall only redoes the files that changed.
compiled: install
	$(BIN)/python -m compileall -q supervisor

examples: build/seed build/seed-static

build/seed: examples/seed.c
	@mkdir -p build
	$(CC) $(CFLAGS) -o $@ $<

build/seed-static: examples/seed.c
	@mkdir -p build
	$(CC) $(CFLAGS) -static -o $@ $<

demo: compiled examples
	sh examples/demo.sh $(BIN)/superv superv-out/demo

test: compiled examples
	$(BIN)/python -m pytest tests

bench: compiled
	$(BIN)/python bench/run.py

clean:
	rm -rf build superv-out .pytest_cache supervisor/*.so supervisor/superv-launch supervisor/superv-watchdog supervisor/__pycache__
