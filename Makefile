# mlre-lab: `make lab` sets everything up and opens JupyterLab; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KERNEL := mlre-lab
PORT ?= 8888
# Jupyter refuses to run as root (containers, CI) unless told.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
# Token authentication, always: TOKEN=... to choose one, otherwise `make lab` draws a fresh one.
TOKEN ?=

.PHONY: lab test install lint docs export clean-nbs gpu-check gpu-wheels clean help

help:
	@echo "make lab    install (first time only) and start JupyterLab on 127.0.0.1 at nbs/index.ipynb"
	@echo "make test   install (first time only) and run the whole suite"
	@echo "make docs   execute the notebooks in a copy and render the site with Quarto into _docs/"
	@echo "make export regenerate mlre_lab/ from nbs/;  make clean-nbs  strip outputs from every notebook"

install: $(STAMP)

# Rebuilt only when the project's requirements change, so a second `make` skips the install.
$(STAMP): pyproject.toml constraints.txt
	@command -v git >/dev/null 2>&1 || { echo "mlre-lab needs git: install it (for example 'sudo apt-get install git' or 'brew install git') and run make again."; exit 1; }
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "mlre-lab needs Python 3.10 or newer, and '$(PYTHON)' was not found: install Python 3.10+ (python.org or your package manager) or run make PYTHON=/path/to/python3."; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "mlre-lab needs Python 3.10 or newer, and $(PYTHON) is $$($(PYTHON) -V 2>&1 | cut -d' ' -f2): install Python 3.10+ and run make PYTHON=python3.12 (or whichever you installed)."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "Could not create $(VENV): install the venv module for $(PYTHON) (on Debian/Ubuntu: sudo apt-get install python3-venv) and run make again."; rm -rf $(VENV); exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -m ipykernel install --user --name $(KERNEL) --display-name "Python (mlre-lab)" >/dev/null
	@touch $(STAMP)
	@echo "Installed mlre-lab into $(VENV); Jupyter kernel '$(KERNEL)' registered."

# The token is drawn once, in the shell, so the printed address and the server share it. port_retries=0: a busy
# port is an error, never a silent move to another port than the one printed.
lab: $(STAMP)
	@token="$(TOKEN)"; token="$${token:-$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(24))')}"; \
	echo "JupyterLab on http://127.0.0.1:$(PORT)/lab/tree/nbs/index.ipynb?token=$$token"; \
	exec $(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=$(PORT) --ServerApp.port_retries=0 \
		--IdentityProvider.token="$$token" --ServerApp.root_dir=$(CURDIR) $(ALLOW_ROOT) nbs/index.ipynb

# ruff, then one pytest session: the library and CLI tests, the notebooks (nbdev-test, inside tests/),
# and nbval over the solution notebooks.
test: $(STAMP)
	$(BIN)/ruff check --quiet .
	$(BIN)/python -m pytest tests $(wildcard solutions/*.ipynb) --nbval-lax --nbval-current-env -p no:cacheprovider -q

lint: $(STAMP)
	$(BIN)/ruff check .

export: $(STAMP)
	$(BIN)/nbdev-export

clean-nbs: $(STAMP)
	$(BIN)/nbdev-clean

# The notebooks are committed without outputs, so the site is rendered from an executed copy in _build/docs: every
# notebook runs there with the project's kernel (a failure names the notebook and cell and stops the build), then
# nbdev-docs renders that copy with Quarto, using the lab's Python, and the site moves to _docs/.
docs: $(STAMP)
	@command -v quarto >/dev/null 2>&1 || { echo "make docs needs Quarto: install it from https://quarto.org/docs/get-started/ and run make docs again."; exit 1; }
	$(BIN)/python scripts/execute-docs.py _build/docs --kernel $(KERNEL)
	cd _build/docs && QUARTO_PYTHON=$(CURDIR)/$(BIN)/python $(CURDIR)/$(BIN)/nbdev-docs
	rm -rf _docs && mv _build/docs/_docs _docs
	@echo "The site is in _docs/ (open _docs/index.html)."

# On a GPU machine: every solution notebook and the checks' tests with MLRE_DEVICE=cuda. A machine without
# Jupyter or internet gets the wheels it lacks from wheels/, filled beforehand by `make gpu-wheels`.
gpu-check:
	bash scripts/gpu-check.sh

gpu-wheels:
	bash scripts/fetch-gpu-wheels.sh

clean:
	rm -rf $(VENV) _proc _docs _build .pytest_cache
