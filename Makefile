# Every target sets up what it needs: a fresh machine runs `make demo` or `make test` directly.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Azurite (Azure Storage emulator) for the Storage Queue and Table tests; 3.36+ need Node >= 21.
AZURITE := .tools/node_modules/.bin/azurite
# checkov (Terraform policy checks in tests/test_terraform.py) in a venv of its own: its pins
# would clash with the project's dependencies.
CHECKOV := .tools/checkov/bin/checkov

.PHONY: setup test lint demo bench package schema clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(AZURITE):
	npm install --prefix .tools --no-audit --no-fund azurite@3.35.0

$(CHECKOV):
	$(PYTHON) -m venv .tools/checkov
	.tools/checkov/bin/pip install --quiet checkov==3.3.30

setup: $(STAMP) $(AZURITE)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint $(CHECKOV)
	$(PY) -m pytest

demo: setup
	$(VENV)/bin/mutguard demo

bench: setup
	$(PY) bench/rbac_scale.py
	$(PY) bench/eks_scan.py
	$(PY) bench/cold_start.py

# The cloud functions' zips in dist/, reproducibly: release/package.py says what each holds.
package: setup
	$(PY) release/package.py

schema: setup
	$(PY) -m mutguard.schema > schemas/report.schema.json

clean:
	rm -rf $(VENV) .tools build dist *.egg-info .pytest_cache .ruff_cache
