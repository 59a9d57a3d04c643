# mattecam: `make run` starts the app, `make test` runs the test suite.
# Both create .venv, install the project and fetch the default weights on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mattecam-installed
CONSTRAINTS := requirements/ci-constraints.txt
WEIGHTS_STAMP := $(VENV)/.mattecam-weights

.PHONY: run test bench lint weights screenshot clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	@touch $@

$(WEIGHTS_STAMP): $(STAMP)
	$(PY) -m app.matting.weights fetch --variant mobilenetv3
	@touch $@

weights: $(WEIGHTS_STAMP)

run: $(WEIGHTS_STAMP)
	$(PY) main.py $(ARGS)

test: $(WEIGHTS_STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

bench: $(WEIGHTS_STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

screenshot: $(WEIGHTS_STAMP)
	$(PY) tools/screenshot.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
