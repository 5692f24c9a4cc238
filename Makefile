# The two commands a new user needs: `make demo` and `make test`. Everything else is optional.
# Every install goes through constraints.txt, which pins the CPU build of PyTorch.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt
SAMPLE := config/sample/register

.PHONY: demo test install install-dev lint docs clean

demo: $(VENV)/.installed
	$(BIN)/vigil demo

test: $(VENV)/.installed-dev
	$(BIN)/pytest $(PYTEST_ARGS)

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) -e '.[dev]'
	touch $@ $(VENV)/.installed

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy vigil collector classifier alerts cases

# Regenerate the README's configuration reference from config/default.toml.
docs: $(VENV)/.installed
	$(BIN)/python -m vigil.docs README.md

clean:
	rm -rf $(VENV) var .pytest_cache
