# Every target sets up what it needs: a fresh machine runs `make demo` or `make test` directly.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# `make demo` installs mutguard alone; `make test` adds every test tool (the dev extra).
CORE_STAMP := $(VENV)/.installed-core
STAMP := $(VENV)/.installed
# libfaketime moves the clock for the run of tests/clock_ahead.py, which says so and skips where
# it could not be built. Built from PyPI's source with the machine's C compiler, without faking
# sleeps, stat or pthread waits: its pthread_cond_timedwait reads the environment on every call
# (Python's GIL waits there), which crashes Python when another thread sets a variable meanwhile.
FAKETIME_VERSION := 3.0.1
FAKETIME_LIBRARY := .tools/libfaketime.so.1
# Azurite (Azure Storage emulator) for the Storage Queue and Table tests; 3.36+ need Node >= 21.
AZURITE := .tools/node_modules/.bin/azurite
# checkov (Terraform policy checks in tests/test_terraform.py) in a venv of its own: its pins
# would clash with the project's dependencies.
CHECKOV := .tools/checkov/bin/checkov
# sarif-multitool (GitHub code scanning's SARIF rules, in tests/test_sarif.py): its npm package
# carries a self-contained linux-x64 .NET build, so it needs Node.js but no .NET runtime.
SARIF_MULTITOOL := .tools/node_modules/.bin/sarif-multitool
# Headless Chromium for the HTML report's browser tests (tests/test_render_html.py), from Debian;
# where it cannot be installed (not root, no apt-get) those tests skip and say so.
CHROMIUM := /usr/bin/chromium

.PHONY: setup test lint demo bench package schema terraform-docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --quiet --upgrade pip

$(CORE_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --quiet -e .
	touch $@

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(CORE_STAMP)

$(FAKETIME_LIBRARY): | $(PY)
	( rm -rf .tools/libfaketime-$(FAKETIME_VERSION) && mkdir -p .tools \
	  && $(PY) -m pip download --quiet --no-binary :all: --no-deps --dest .tools \
		libfaketime==$(FAKETIME_VERSION) \
	  && tar -xzf .tools/libfaketime-$(FAKETIME_VERSION).tar.gz -C .tools \
	  && $(MAKE) --silent -C .tools/libfaketime-$(FAKETIME_VERSION)/libfaketime/vendor/libfaketime/src \
		libfaketime.so.1 FAKETIME_COMPILE_CFLAGS="-UFAKE_STAT -UFAKE_UTIME -UFAKE_SLEEP -UFAKE_PTHREAD" \
	  && cp .tools/libfaketime-$(FAKETIME_VERSION)/libfaketime/vendor/libfaketime/src/libfaketime.so.1 $@ ) \
	|| echo "libfaketime could not be built here (it needs cc and make)"

$(AZURITE):
	npm install --prefix .tools --no-audit --no-fund azurite@3.35.0

$(CHECKOV):
	$(PYTHON) -m venv .tools/checkov
	.tools/checkov/bin/pip install --quiet checkov==3.3.30

$(SARIF_MULTITOOL):
	npm install --prefix .tools --no-audit --no-fund @microsoft/sarif-multitool@5.7.0

$(CHROMIUM):
	( command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ) \
	|| echo "chromium could not be installed here (needs root and apt-get): the HTML report's browser tests will be skipped"

setup: $(STAMP) $(AZURITE)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint $(CHECKOV) $(SARIF_MULTITOOL) $(FAKETIME_LIBRARY) $(CHROMIUM)
	$(PY) -m pytest
	$(PY) tests/clock_ahead.py

demo: $(CORE_STAMP)
	$(VENV)/bin/mutguard demo

bench: setup
	$(PY) bench/rbac_scale.py
	$(PY) bench/report_size.py
	$(PY) bench/eks_scan.py
	$(PY) bench/cold_start.py
	$(PY) bench/fleet.py

# The cloud functions' zips in dist/, reproducibly: release/package.py says what each holds.
package: setup
	$(PY) release/package.py

schema: setup
	$(PY) -m mutguard.schema > schemas/report.schema.json

# The Inputs and Outputs tables of each Terraform module's README, from its variables and outputs.
terraform-docs: setup
	$(PY) release/terraform_docs.py

clean:
	rm -rf $(VENV) .tools build dist *.egg-info .pytest_cache .ruff_cache
