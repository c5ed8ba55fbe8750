# Two commands do all set-up on a fresh machine (README.md):
#   make serve   create .venv, install the service, start it on 127.0.0.1:8080
#   make test    create .venv (+ test extras) and .venv-fhir (the loopback FHIR test server), install Debian's
#                chromium if /usr/bin/chromium is absent (browser tests), lint, run every test
#   make screenshots   the browser flows write PNGs of the sandbox's card column to docs/images/
#   make fhir-server  the loopback FHIR test server on 127.0.0.1:8090 with every scenario loaded (README's CLI)
# Install steps say what they do and roughly how long they take the first time (2-core machine, PyPI mirror).
PYTHON ?= python3
VENV := .venv
FHIR_VENV := .venv-fhir
PIP_FLAGS := -q --disable-pip-version-check
SERVE_ARGS ?=
PYTEST_ARGS ?=
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
FHIR_PORT ?= 8090

.PHONY: serve test lint bench screenshots clean fhir-server

$(VENV)/.runtime: pyproject.toml
	@echo "make: installing the service into $(VENV) (first time: about 20-40 s)"
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -e .
	touch $@

$(VENV)/.test: $(VENV)/.runtime pyproject.toml
	@echo "make: installing the test tools into $(VENV): pytest, ruff, embedded PostgreSQL (first time: about 20-40 s)"
	$(VENV)/bin/pip install $(PIP_FLAGS) -e '.[test]'
	touch $@

# sekmet-fhir lives in its own venv: its FastAPI/uvicorn stack must not leak into the service's.
$(FHIR_VENV)/.installed: tests/fhir_server/constraints.txt
	@echo "make: installing the loopback FHIR test server sekmet-fhir into $(FHIR_VENV) (first time: about 15-30 s)"
	test -x $(FHIR_VENV)/bin/python || $(PYTHON) -m venv $(FHIR_VENV)
	$(FHIR_VENV)/bin/pip install $(PIP_FLAGS) sekmet-fhir==0.1.1 -c tests/fhir_server/constraints.txt
	touch $@

# Playwright drives the system browser (no browser download); a file target, so it runs only when it is missing.
$(CHROMIUM):
	@echo "make: installing Debian's chromium for the browser tests (first time: about 1-2 minutes)"
	$(SUDO) apt-get update
	$(SUDO) apt-get install -y chromium

serve: $(VENV)/.runtime
	$(VENV)/bin/cds-service serve $(SERVE_ARGS)

# Foreground; Ctrl-C stops it. Its store (.fhir-server/) is emptied at every start, then every scenario is loaded.
fhir-server: $(VENV)/.runtime $(FHIR_VENV)/.installed
	$(VENV)/bin/python tests/fhir_server/loopback.py --port $(FHIR_PORT)

lint: $(VENV)/.test
	$(VENV)/bin/ruff check .

test: $(VENV)/.test $(FHIR_VENV)/.installed $(CHROMIUM) lint
	@echo "make: running the tests (about 2 minutes; servers start on loopback ports)"
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

screenshots: $(VENV)/.test $(FHIR_VENV)/.installed $(CHROMIUM)
	SANDBOX_SCREENSHOTS=$(CURDIR)/docs/images $(VENV)/bin/python -m pytest tests/browser -q -p no:cacheprovider

bench: $(VENV)/.test $(FHIR_VENV)/.installed
	$(VENV)/bin/python bench/run.py

clean:
	rm -rf $(VENV) $(FHIR_VENV) instance .pytest_cache .fhir-server
