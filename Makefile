# The README's two commands are `make demo` and `make test`; .ci/run calls the same targets,
# so what CI checks is what a user runs.
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench

# Every install goes through constraints.txt, which pins the CPU build of torch.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/arbiter demo

lint: setup
	$(VENV)/bin/ruff check arbiter tests benchmarks

test: lint
	$(VENV)/bin/python -m pytest

bench: setup
	$(VENV)/bin/arbiter bench
