# trainstack: the two commands a fresh machine needs are `make plan` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The suite and the plan start many Python processes (the CLI, the fake Pulumi CLI, the jobs they play):
# let them keep compiled bytecode in __pycache__ (ignored by git) even where the environment turns it
# off (PYTHONDONTWRITEBYTECODE=1 recompiles every module in every process: 6 s of each test collection).
export PYTHONDONTWRITEBYTECODE :=

.PHONY: setup plan plans try test test-fast lint bench constraints config-docs clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

## Offline plan of the example platform stack (no AWS account, no Pulumi CLI).
plan: $(STAMP)
	$(BIN)/trainstack plan platform

## Offline plans of every example stack.
plans: $(STAMP)
	@for s in $$(ls stacks | sed -n 's/^Pulumi\.\(.*\)\.yaml$$/\1/p'); do $(BIN)/trainstack plan $$s || exit 1; done

## See upload, run, ls and down work end to end against LOCAL STAND-INS (fake Pulumi CLI, moto): no AWS, no CLI.
try: $(STAMP)
	$(BIN)/trainstack try

## Lint (ruff, formatting, the layer contracts, types), then the whole test suite. Two workers (two cores)
## that steal work from each other: the end-to-end tests take up to ~10 s each, and with the default
## scheduling one worker idled at the end (169 s against 141 s with work stealing, measured). The ten slowest
## tests are listed at the end, so a suite that got slower names the test that did it (as `make bench` names costs).
test: lint
	$(BIN)/python -m pytest -n 2 --dist worksteal --durations=10

## The inner loop: lint and every test but the end-to-end tier (fake-CLI lifecycle, bootstrap scenarios).
test-fast: lint
	$(BIN)/python -m pytest -n 2 --dist worksteal -m "not e2e and not pulumi_cli" --durations=10

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

## Wall time of `trainstack plan` per example stack next to the import floor.
bench: $(STAMP)
	$(BIN)/python scripts/bench.py

## Pulumi.yaml's config schema and docs/configuration.md, generated from the config table
## (trainstack/model/config/table.py); tests/model/test_config_table.py fails when they drift.
config-docs: $(STAMP)
	$(BIN)/python -m trainstack.model.config

constraints: $(STAMP)
	{ echo '# Exact versions of every package the project and its tests install (pip freeze of a working setup).'; \
	  echo '# Regenerate after changing pyproject.toml: make constraints'; \
	  $(BIN)/pip freeze --exclude-editable | grep -v '^trainstack'; } > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info

## Mermaid's own parser (npm, pinned by tests/mermaid/package-lock.json) for the diagram tests.
MERMAID := tests/mermaid/node_modules/.installed
$(MERMAID): tests/mermaid/package.json tests/mermaid/package-lock.json
	npm ci --prefix tests/mermaid --no-audit --no-fund --prefer-offline --loglevel=error
	touch $(MERMAID)
setup test test-fast: $(MERMAID)

## IAM policy engine @cloud-copilot/iam-simulate (npm, pinned by tests/iam/package-lock.json) for the IAM tests.
IAM_ENGINE := tests/iam/node_modules/.installed
$(IAM_ENGINE): tests/iam/package.json tests/iam/package-lock.json
	npm ci --prefix tests/iam --no-audit --no-fund --prefer-offline --loglevel=error
	touch $(IAM_ENGINE)
setup test test-fast: $(IAM_ENGINE)
