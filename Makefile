# Two commands: `make test` and `make up` (see README). Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
PYTEST_ARGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test up bench-apply clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the project metadata changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# A local control plane on loopback (kv, API server, controllers, scheduler, hollow nodes; data under .ketch) until Ctrl-C.
up: $(STAMP)
	$(BIN)/ketch up --dir .ketch

bench-apply: $(STAMP)
	$(BIN)/python bench/kv_apply.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
