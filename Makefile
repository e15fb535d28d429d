# superv: `make demo` sets everything up and runs the bundled example;
# `make test` runs the tests; `make bench` compares native, strace and superv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CC     ?= cc
CFLAGS ?= -O2 -Wall

.PHONY: demo test bench install examples clean

install: $(BIN)/superv

$(BIN)/superv: pyproject.toml setup.py native/launcher.c native/kernelmod.c native/fastpath.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

examples: build/seed build/seed-static

build/seed: examples/seed.c
	@mkdir -p build
	$(CC) $(CFLAGS) -o $@ $<

build/seed-static: examples/seed.c
	@mkdir -p build
	$(CC) $(CFLAGS) -static -o $@ $<

demo: install examples
	sh examples/demo.sh $(BIN)/superv superv-out/demo

test: install examples
	$(BIN)/python -m pytest tests

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf build superv-out .pytest_cache supervisor/*.so supervisor/superv-launch
