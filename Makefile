# Two commands do all set-up on a fresh machine (README.md):
#   make serve   create .venv, install the service, start it on 127.0.0.1:8080
#   make test    create .venv (+ test extras) and .venv-fhir (the loopback FHIR test server), install Debian's
#                chromium if /usr/bin/chromium is absent (browser tests), lint, run every test
#   make screenshots   the browser flows write PNGs of the sandbox's card column to docs/images/
PYTHON ?= python3
VENV := .venv
FHIR_VENV := .venv-fhir
PIP_FLAGS := -q --disable-pip-version-check
SERVE_ARGS ?=
PYTEST_ARGS ?=
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: serve test lint bench screenshots clean

$(VENV)/.runtime: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -e .
	touch $@

$(VENV)/.test: $(VENV)/.runtime pyproject.toml
	$(VENV)/bin/pip install $(PIP_FLAGS) -e '.[test]'
	touch $@

# sekmet-fhir lives in its own venv: its FastAPI/uvicorn stack must not leak into the service's.
$(FHIR_VENV)/.installed: tests/fhir_server/constraints.txt
	test -x $(FHIR_VENV)/bin/python || $(PYTHON) -m venv $(FHIR_VENV)
	$(FHIR_VENV)/bin/pip install $(PIP_FLAGS) sekmet-fhir==0.1.1 -c tests/fhir_server/constraints.txt
	touch $@

# Playwright drives the system browser (no browser download); a file target, so it runs only when it is missing.
$(CHROMIUM):
	$(SUDO) apt-get update
	$(SUDO) apt-get install -y chromium

serve: $(VENV)/.runtime
	$(VENV)/bin/cds-service serve $(SERVE_ARGS)

lint: $(VENV)/.test
	$(VENV)/bin/ruff check .

test: $(VENV)/.test $(FHIR_VENV)/.installed $(CHROMIUM) lint
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

screenshots: $(VENV)/.test $(FHIR_VENV)/.installed $(CHROMIUM)
	SANDBOX_SCREENSHOTS=$(CURDIR)/docs/images $(VENV)/bin/python -m pytest tests/browser -q -p no:cacheprovider

bench: $(VENV)/.test $(FHIR_VENV)/.installed
	$(VENV)/bin/python bench/run.py

clean:
	rm -rf $(VENV) $(FHIR_VENV) instance .pytest_cache
