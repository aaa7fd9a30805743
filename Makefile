# Two set-up commands: `make demo` (the main job) and `make test` (the suite).
PYTHON ?= python3.12
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= $(or $(JAXVISION_DATA),../shared/data)

.PHONY: demo test docs figures port-check check-python clean

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

test: $(VENV)/.installed-dev
	JAXVISION_DATA=$(DATA) $(PY) -m pytest -q

docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

port-check: $(VENV)/.installed-dev
	JAXVISION_DATA=$(DATA) $(PY) bench/port_check.py

figures: $(VENV)/.installed
	JAXVISION_DATA=$(DATA) $(PY) docs/make_figures.py

clean:
	rm -rf $(VENV) runs site
