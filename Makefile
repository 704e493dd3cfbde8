# The two commands of the README, `make run` and `make test`, do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The stamp is newer than pyproject.toml when the environment matches it; otherwise it is rebuilt.
STAMP  := $(VENV)/.installed
# The Python trees to format and lint; a tree not created yet is left out rather than failing.
PY_TREES := $(wildcard router tests bench)

.PHONY: run test check rules-check format bench eval-runbooks schema clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/runbook-router serve

# `runbook-router check` of ROUTER_RULES_DIR (else rules/); `check` is the code's lint target.
rules-check: $(STAMP)
	$(BIN)/runbook-router check

check: $(STAMP)
	$(BIN)/ruff format --check $(PY_TREES)
	$(BIN)/ruff check $(PY_TREES)
	$(BIN)/mypy

test: check
	$(BIN)/pytest

format: $(STAMP)
	$(BIN)/ruff format $(PY_TREES)
	$(BIN)/ruff check --fix $(PY_TREES)

bench: $(STAMP)
	$(BIN)/python -m bench

# Runbook matching on the corpus of other organisations' runbooks: top-1, false attachments,
# calibration, per collection, for the tuning and the test part (docs/runbooks.md).
eval-runbooks: $(STAMP)
	$(BIN)/python -m bench.eval_runbooks

# rules/schema.json is made from the keys the loader reads (router/rules/schema.py).
schema: $(STAMP)
	$(BIN)/python -c 'from router.rules.schema import schema_text; print(schema_text(), end="")' > rules/schema.json

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
