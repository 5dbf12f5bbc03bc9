# The two set-up commands of the README:
#   make demo   installs everything and runs the main job
#   make test   installs everything and runs lint, type check and the test suite
# Both work on a fresh Debian machine with Python 3.11 (apt needs root or sudo).

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
SYSTEM_PACKAGES := libegl1 libgl1-mesa-dri libosmesa6 chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export MUJOCO_GL ?= egl

.PHONY: install system-deps demo test lint bench clean

system-deps:
	@dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1 || { \
	  echo "installing $(SYSTEM_PACKAGES) for headless rendering"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(SYSTEM_PACKAGES); }

$(VENV)/.installed: pyproject.toml setup.py
	$(MAKE) system-deps
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,train,ros,teleop]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/twinbridge sim --video out/fetch-push.mp4

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -q

bench: install
	$(PY) bench/env_speed.py
	$(PY) bench/inference.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache *.egg-info
