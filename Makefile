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

.PHONY: run test bench lint weights screenshot clean

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

$(WEIGHTS_STAMP): $(STAMP)
	$(PY) -m app.matting.weights fetch --variant mobilenetv3
	@touch $@

weights: $(WEIGHTS_STAMP)

run: $(WEIGHTS_STAMP)
	$(PY) main.py $(ARGS)

test: $(WEIGHTS_STAMP) $(DEV_STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

bench: $(WEIGHTS_STAMP) $(DEV_STAMP)
	$(PY) -m bench

lint: $(DEV_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

screenshot: $(WEIGHTS_STAMP)
	$(PY) tools/screenshot.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
