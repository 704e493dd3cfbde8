# The two commands of the README, `make run` and `make test`, do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The stamp is newer than pyproject.toml when the environment matches it; otherwise it is rebuilt.
STAMP  := $(VENV)/.installed

.PHONY: run test check format bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/runbook-router serve

check: $(STAMP)
	$(BIN)/ruff format --check router tests bench
	$(BIN)/ruff check router tests bench
	$(BIN)/mypy

test: check
	$(BIN)/pytest

format: $(STAMP)
	$(BIN)/ruff format router tests bench
	$(BIN)/ruff check --fix router tests bench

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
