# Two set-up commands: `make demo` (the main job) and `make test` (the suite).
PYTHON ?= python3.12
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= $(or $(JAXVISION_DATA),../shared/data)

.PHONY: demo test check-python clean

check-python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 12), f"jaxvision needs Python >= 3.12 (found {sys.version.split()[0]}); install it, e.g. pyenv install 3.12 (.python-version selects it)"' \
	  || { echo "error: $(PYTHON) is missing or older than 3.12"; exit 1; }

$(VENV)/.installed-%: pyproject.toml | check-python
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$*]"
	touch $@

demo: $(VENV)/.installed-dev
	JAXVISION_DATA=$(DATA) $(PY) experiments/ch08_mnist_convnet.py

test: $(VENV)/.installed-dev
	JAXVISION_DATA=$(DATA) $(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs
