# mattecam: `make run` starts the app, `make test` runs the test suite.
# Both create .venv, install the project and fetch the default weights on first use; `make run`
# installs what the app needs, `make test` adds the test tools (pytest, ruff, onnxruntime).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mattecam-installed
DEV_STAMP := $(VENV)/.mattecam-dev-installed
CONSTRAINTS := requirements/ci-constraints.txt
WEIGHTS_STAMP := $(VENV)/.mattecam-weights

# The converters of the CoreML and TFLite exports live in a separate environment: they pull in
# much that the app does not need (and litert-torch bounds torch's version), so `make run` never
# installs them. `make test` makes it and runs the tests in tests/export_env with it.
EXPORT_VENV ?= .venv-export
EXPORT_PY := $(EXPORT_VENV)/bin/python
EXPORT_EXTRAS := dev,coreml
EXPORT_STAMP := $(EXPORT_VENV)/.mattecam-installed
EXPORT_TESTS ?= tests/export_env

.PHONY: run test bench lint weights screenshot clean export-env

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing mattecam and what it needs to run (once; PyTorch alone is a large download)"
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar on -c $(CONSTRAINTS) -e .
	@touch $@

$(DEV_STAMP): $(STAMP)
	@echo "Installing the test tools (pytest, pytest-qt, ruff, onnxruntime)"
	$(PY) -m pip install --progress-bar on -c $(CONSTRAINTS) -e '.[dev]'
	@touch $@

$(EXPORT_STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(EXPORT_PY) || $(PYTHON) -m venv $(EXPORT_VENV)
	$(EXPORT_PY) -m pip install --quiet --upgrade pip
	$(EXPORT_PY) -m pip install --quiet -c $(CONSTRAINTS) -e '.[$(EXPORT_EXTRAS)]'
	@touch $@

export-env: $(EXPORT_STAMP)

$(WEIGHTS_STAMP): $(STAMP)
	$(PY) -m app.matting.weights fetch --variant mobilenetv3
	@touch $@

weights: $(WEIGHTS_STAMP)

run: $(WEIGHTS_STAMP)
	$(PY) main.py $(ARGS)

test: $(WEIGHTS_STAMP) $(DEV_STAMP) $(if $(EXPORT_TESTS),$(EXPORT_STAMP))
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest --ignore=tests/export_env $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; rc=1; fi; \
	if [ -n "$(EXPORT_TESTS)" ]; then \
		MATTECAM_EXPORT_ENV=1 $(EXPORT_PY) -m pytest $(EXPORT_TESTS); erc=$$?; \
		if [ $$erc -eq 5 ]; then echo "pytest collected no export tests" >&2; erc=1; fi; \
		if [ $$rc -eq 0 ]; then rc=$$erc; fi; \
	fi; exit $$rc

bench: $(WEIGHTS_STAMP) $(DEV_STAMP)
	$(PY) -m bench

lint: $(DEV_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

screenshot: $(WEIGHTS_STAMP)
	$(PY) tools/screenshot.py

clean:
	rm -rf $(VENV) $(EXPORT_VENV) .pytest_cache .ruff_cache
