# Two set-up commands: `make demo` (the main job) and `make test` (the suite).
PYTHON ?= python3.12
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= $(abspath $(or $(JAXVISION_DATA),../shared/data))

.PHONY: demo test test-fast docs figures port-check check-python clean

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null || { \
	  echo "error: jaxvision needs Python >= 3.12 as '$(PYTHON)' (found: $$($(PYTHON) --version 2>&1))."; \
	  echo "       With pyenv, the committed .python-version selects 3.12 (pyenv install 3.12)."; exit 1; }

$(VENV)/.installed: pyproject.toml | check-python
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	JAXVISION_DATA=$(DATA) $(PY) experiments/ch08_mnist_convnet.py

# Two pytest workers (pytest-xdist), one per core; a module's tests stay on one worker so its
# shared Keras twins and compiles are built once. WORKERS=0 runs in-process (for pdb).
WORKERS ?= 2
PYTEST := JAXVISION_DATA=$(DATA) $(PY) -m pytest -q -n $(WORKERS) --dist loadscope

test: $(VENV)/.installed-dev
	$(PYTEST)

# The forker's edit-test loop: every layer's Keras parity and gradient checks, their doctests,
# and the models' shapes and parity (under 2 minutes on 2 cores).
test-fast: $(VENV)/.installed-dev
	$(PYTEST) tests/layers jaxvision/layers tests/models/test_models.py

docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

port-check: $(VENV)/.installed-dev
	JAXVISION_DATA=$(DATA) $(PY) bench/port_check.py

figures: $(VENV)/.installed
	JAXVISION_DATA=$(DATA) $(PY) docs/make_figures.py

clean:
	rm -rf $(VENV) runs site
