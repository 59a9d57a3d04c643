# mattecam: `make run` starts the app, `make test` runs the test suite.
# Both create .venv, install the project and fetch the default weights on first use; `make run`
# installs what the app needs, `make test` adds the test tools (pytest, ruff, onnxruntime).
# `make test` also makes .venv-tf (TensorFlow, for the SavedModel and TF.js export tests) and
# installs web/'s Node packages (TensorFlow.js, puppeteer-core).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mattecam-installed
DEV_STAMP := $(VENV)/.mattecam-dev-installed
CONSTRAINTS := requirements/ci-constraints.txt
WEIGHTS_STAMP := $(VENV)/.mattecam-weights
TF_VENV ?= .venv-tf
TF_PY := $(TF_VENV)/bin/python
TF_STAMP := $(TF_VENV)/.mattecam-installed
TFJS_VERSION := 4.22.0
WEB_STAMP := web/node_modules/.mattecam-installed

# The converters of the CoreML and TFLite exports live in a separate environment: they pull in
# much that the app does not need (and litert-torch bounds torch's version), so `make run` never
# installs them. `make test` makes it and runs the tests in tests/export_env with it.
EXPORT_VENV ?= .venv-export
EXPORT_PY := $(EXPORT_VENV)/bin/python
EXPORT_EXTRAS := dev,coreml,tflite
EXPORT_STAMP := $(EXPORT_VENV)/.mattecam-installed
EXPORT_TESTS ?= tests/export_env

.PHONY: run test bench lint weights screenshot clean export-env tf-env web-deps web

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

# TensorFlow lives in its own environment: the app never needs it.
$(TF_STAMP): pyproject.toml $(CONSTRAINTS) requirements/tf-env.txt
	@test -x $(TF_PY) || $(PYTHON) -m venv $(TF_VENV)
	$(TF_PY) -m pip install --quiet --upgrade pip
	$(TF_PY) -m pip install --quiet -c $(CONSTRAINTS) -e '.[dev,tensorflow]' -r requirements/tf-env.txt
	$(TF_PY) -m pip install --quiet --no-deps tensorflowjs==$(TFJS_VERSION)
	@touch $@

tf-env: $(TF_STAMP)

$(WEB_STAMP): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js 18 or newer (e.g. apt-get install nodejs npm)." >&2; exit 1; }
	cd web && npm ci --no-audit --no-fund
	@touch $@

web-deps: $(WEB_STAMP)

# mattecam in the browser: a static page (web/) with the TF.js export in web/model, served locally.
WEB_PORT ?= 8000
web/model/model.json: $(TF_STAMP) $(WEIGHTS_STAMP)
	$(TF_PY) -m app.matting.export tfjs --precision fp16 --output web/model

web: web/model/model.json $(WEB_STAMP)
	@echo "mattecam in the browser: open http://127.0.0.1:$(WEB_PORT)/ (Ctrl-C stops the server)"
	$(PYTHON) -m http.server $(WEB_PORT) --bind 127.0.0.1 --directory web

run: $(WEIGHTS_STAMP)
	$(PY) main.py $(ARGS)

test: $(WEIGHTS_STAMP) $(DEV_STAMP) $(if $(EXPORT_TESTS),$(EXPORT_STAMP)) $(TF_STAMP) $(WEB_STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest --ignore=tests/export_env --ignore=tests/tf_env \
		$(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; rc=1; fi; \
	if [ -n "$(EXPORT_TESTS)" ]; then \
		MATTECAM_EXPORT_ENV=1 $(EXPORT_PY) -m pytest $(EXPORT_TESTS); erc=$$?; \
		if [ $$erc -eq 5 ]; then echo "pytest collected no export tests" >&2; erc=1; fi; \
		if [ $$rc -eq 0 ]; then rc=$$erc; fi; \
	fi; \
	MATTECAM_TF_ENV=1 $(TF_PY) -m pytest tests/tf_env $(TF_PYTEST_ARGS); trc=$$?; \
	if [ $$trc -eq 5 ]; then echo "pytest collected no TensorFlow tests" >&2; trc=1; fi; \
	if [ $$rc -eq 0 ]; then rc=$$trc; fi; exit $$rc

bench: $(WEIGHTS_STAMP) $(DEV_STAMP)
	$(PY) -m bench

lint: $(DEV_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

screenshot: $(WEIGHTS_STAMP)
	$(PY) tools/screenshot.py

clean:
	rm -rf $(VENV) $(EXPORT_VENV) $(TF_VENV) web/node_modules .pytest_cache .ruff_cache
