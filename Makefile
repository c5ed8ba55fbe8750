# Two commands do all set-up on a fresh machine (README.md):
#   make serve   create .venv, install the service, compile its hot modules (build_native.py), start it on
#                127.0.0.1:8080
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

.PHONY: serve test lint bench screenshots clean fhir-server native

$(VENV)/.runtime: pyproject.toml
	@echo "make: installing the service and its compiler (mypyc) into $(VENV) (first time: about 30-50 s)"
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -e '.[native]'
	touch $@

# The hot modules compiled to C beside their sources (build_native.py): about 75 s the first time, 40 s after an
# edit of one of them, nothing when each is newer than its source. CDS_NATIVE=0 skips it and runs the sources.
native: $(VENV)/.runtime
	$(VENV)/bin/python build_native.py

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

serve: native
	$(VENV)/bin/cds-service serve $(SERVE_ARGS)

# Foreground; Ctrl-C stops it. Its store (.fhir-server/) is emptied at every start, then every scenario is loaded.
fhir-server: $(VENV)/.runtime $(FHIR_VENV)/.installed
	$(VENV)/bin/python tests/fhir_server/loopback.py --port $(FHIR_PORT)

lint: $(VENV)/.test
	$(VENV)/bin/ruff check .

# Every test runs against what serve runs (the compiled modules where a C compiler is present); the few that count
# calls of Python functions by patching them (marker "sources") run again with the sources (CDS_NATIVE=0).
test: $(VENV)/.test $(FHIR_VENV)/.installed $(CHROMIUM) lint native
	@echo "make: running the tests (about 3 minutes; servers start on loopback ports)"
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)
	CDS_NATIVE=0 $(VENV)/bin/python -m pytest -m sources -q

screenshots: $(VENV)/.test $(FHIR_VENV)/.installed $(CHROMIUM)
	SANDBOX_SCREENSHOTS=$(CURDIR)/docs/images $(VENV)/bin/python -m pytest tests/browser -q -p no:cacheprovider

bench: $(VENV)/.test $(FHIR_VENV)/.installed native
	$(VENV)/bin/python bench/run.py

clean:
	rm -rf $(VENV) $(FHIR_VENV) instance .pytest_cache .fhir-server build .mypy_cache
	find cds_service -name '*.so' -delete
