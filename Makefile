# Two entry points on a fresh machine with Python >= 3.10:
#   make demo   install into .venv, then run the whole workflow on the bundled demo scene (CPU)
#   make test   install into .venv (with test extras), then run the test suite
#   make test-unit   the unit tier only (tests/unit, under a minute): the loop while changing code
#   make test-slurm  the SLURM profile on a real one-node cluster on loopback (installs slurm-wlm + munge; root)
# GPU users: create .venv and install the CUDA torch build from pytorch.org first; `make` keeps it.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
CORES  ?= 2
BIN    := $(VENV)/bin

.PHONY: install demo test test-unit test-slurm bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html

test: install
	$(BIN)/python -m pytest

test-unit: install
	$(BIN)/python -m pytest tests/unit

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

test-slurm: install
	command -v slurmctld >/dev/null || ($(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q slurm-wlm munge)
	$(BIN)/python -m pytest -m slurm tests/integration/test_slurm.py

# every benchmark runs (after the demo, whose results several of them measure); exit 1 if any missed its target
bench: demo
	@failed=""; for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || failed="$$failed $$b"; done; \
	if [ -n "$$failed" ]; then echo "target missed or crashed:$$failed"; exit 1; fi

clean:
	rm -rf results logs .snakemake
