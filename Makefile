# mmsbridge: the two commands are `make run` and `make test`; everything they need is set up here.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
SAM_VENV := .venv-sam
SCAN_VENV := .venv-scan
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
# The SAM CLI's own tools run with the project's Python 3.13 first on PATH (sam build needs python3.13).
SAM_ENV := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 \
	AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
# pip's configured extra indexes print one warning per package; keep the output readable.
PIP_QUIET := { grep -v "is ignored: it is neither a file nor a directory" || true; }
# Every environment installs from a lock (requirements*.txt, made by `make lock` from requirements*.in):
# each package, pip itself and transitive dependencies included, pinned by version with its files' hashes.
# pip refuses a file whose hash is not in the lock, and a dependency the lock does not list.
PIP_LOCKED := --require-hashes --requirement

# Python 3.13: $(PYTHON) if given, else python3.13 on PATH, else the newest pyenv 3.13.x.
PYTHON313 = $(shell \
	for c in "$(PYTHON)" "$$(command -v python3.13)" \
	         $$(ls -d "$${PYENV_ROOT:-$$HOME/.pyenv}"/versions/3.13*/bin/python3.13 2>/dev/null | sort -V -r); do \
	  [ -n "$$c" ] && [ -x "$$c" ] && "$$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' \
	    2>/dev/null && { echo "$$c"; break; }; \
	done)

.PHONY: help setup lock run demo test lint format template-check bench clean security fuzz

help:
	@echo "make run    the whole pipeline locally (moto + the real handlers), endpoints in .local/endpoints.json"
	@echo "make demo  the send loop end to end on its own local stack: five requests and their timelines"
	@echo "make test   lint, template checks (cfn-lint, sam validate --lint, sam build), make security, the tests"
	@echo "make security  checkov on template.yaml, bandit on the code, pip-audit on the locked dependencies"
	@echo "make lock   the hashed locks again from the requirements*.in files (UPGRADE=1: newest allowed versions)"
	@echo "make bench  the benchmarks, each with its baseline measured in the same run"
	@echo "make fuzz   fuzz the parsers of outside input: hypothesis, then atheris (FUZZ_SECONDS per target, 60)"

# Sets $$py to Python 3.13, or says what to do and fails.
NEED_PY313 = py="$(PYTHON313)"; if [ -z "$$py" ]; then \
	  echo "mmsbridge needs Python 3.13 (the Lambda runtime's version) and found none." >&2; \
	  echo "  with pyenv:  pyenv install 3.13   (then run make again)" >&2; \
	  echo "  or point at one:  make PYTHON=/path/to/python3.13 ..." >&2; exit 1; fi

$(VENV)/.installed: requirements-dev.txt layers/mmsbridge/requirements.txt
	@$(NEED_PY313); echo "setting up $(VENV) with $$py"; rm -rf $(VENV); "$$py" -m venv $(VENV)
	$(PY) -m pip install -q $(PIP_LOCKED) requirements-dev.txt 2>&1 | $(PIP_QUIET)
	@# The shared layer's package and the local stack import as they do on Lambda: from the path.
	echo "$(CURDIR)/layers/mmsbridge" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/mmsbridge-dev.pth"
	echo "$(CURDIR)" >> "$$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/mmsbridge-dev.pth"
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	@$(NEED_PY313); echo "setting up $(SAM_VENV) (the SAM CLI pins its own boto3)"; \
	  rm -rf $(SAM_VENV); "$$py" -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q $(PIP_LOCKED) requirements-sam.txt 2>&1 | $(PIP_QUIET)
	touch $@

$(SCAN_VENV)/.installed: requirements-scan.txt
	@$(NEED_PY313); echo "setting up $(SCAN_VENV) (checkov pins many packages of its own)"; \
	  rm -rf $(SCAN_VENV); "$$py" -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install -q $(PIP_LOCKED) requirements-scan.txt 2>&1 | $(PIP_QUIET)
	touch $@

# The three environments are independent: built side by side (mostly downloads).
setup:
	@$(MAKE) --no-print-directory -j3 $(VENV)/.installed $(SAM_VENV)/.installed $(SCAN_VENV)/.installed

# The locks again from the requirements*.in files (needs PyPI). A pin still allowed by its .in file stays as
# it is; UPGRADE=1 moves every package to the newest version allowed, UPGRADE_PACKAGES="a b" only those. The
# layer's lock comes first: the development lock takes the layer's packages at its versions. A lock is
# rewritten only when it changes, and then `make setup` (or `make test`) rebuilds the environments from it.
UV_FLAGS = $(if $(filter 1,$(UPGRADE)),--upgrade) $(foreach package,$(UPGRADE_PACKAGES),--upgrade-package $(package))
UV_COMPILE = UV_PYTHON_DOWNLOADS=never $(VENV)/bin/uv pip compile --quiet --generate-hashes $(UV_FLAGS) \
	--python $(PY) --python-version 3.13 --universal --custom-compile-command "make lock"
lock: $(VENV)/.installed
	$(MAKE) --no-print-directory -C layers/mmsbridge lock UV="$(CURDIR)/$(VENV)/bin/uv" \
	  BUILD_PYTHON="$(CURDIR)/$(PY)" UV_FLAGS="$(strip $(UV_FLAGS))"
	for lock in requirements-{dev,sam,scan,fuzz}.txt; do \
	  if [ -f $$lock ]; then cp $$lock $$lock.new; fi; \
	  $(UV_COMPILE) $${lock%.txt}.in --output-file $$lock.new || { rm -f $$lock.new; exit 1; }; \
	  if cmp -s $$lock.new $$lock; then rm $$lock.new; else mv $$lock.new $$lock; echo "$$lock changed"; fi; \
	done

# RUN_ARGS go to `python -m local run` (e.g. RUN_ARGS='--port 0' when port 3000 is taken).
RUN_ARGS ?=
run: $(VENV)/.installed
	$(PY) -m local run $(RUN_ARGS)

demo: $(VENV)/.installed
	$(PY) -m local.demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache --no-logo

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

template-check: setup
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM_ENV) $(SAM) validate --lint --template template.yaml
	$(SAM_ENV) $(SAM) build --template template.yaml --build-dir .aws-sam/build --cache-dir .aws-sam/cache

# checkov on the template (a finding accepted is skipped in its resource's Metadata, with the reason) and bandit
# on the code (skips in pyproject.toml [tool.bandit], else `# nosec BXXX` on the line, with the reason), both
# offline. Then pip-audit on the layer's and the development environment's locks against OSV's database:
# a known vulnerability fails; where the database cannot be reached it says so on one line and passes, unless
# PIP_AUDIT_REQUIRED=1. A vulnerability accepted goes in PIP_AUDIT_IGNORE (its id), with the reason beside it.
PIP_AUDIT_LOCKS := layers/mmsbridge/requirements.txt requirements-dev.txt
PIP_AUDIT_IGNORE :=
PIP_AUDIT_REQUIRED ?=
security: $(SCAN_VENV)/.installed
	$(SCAN_VENV)/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download
	$(SCAN_VENV)/bin/bandit -c pyproject.toml -r -q functions layers/mmsbridge/mmsbridge local ops tools
	$(SCAN_VENV)/bin/python tools/audit_locks.py --pip-audit $(SCAN_VENV)/bin/pip-audit \
	  $(if $(filter 1,$(PIP_AUDIT_REQUIRED)),--required) $(foreach id,$(PIP_AUDIT_IGNORE),--ignore-vuln $(id)) \
	  $(PIP_AUDIT_LOCKS)

# Two workers: most tests wait on a local stack or a queue, so two share two cores well; a file's tests stay
# on one worker, with its fixtures. TEST_WORKERS=0 runs them in one process.
TEST_WORKERS ?= 2
test: setup lint template-check security
	$(PY) -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile)

bench: $(VENV)/.installed
	$(PY) bench/run.py

# The postback parser, the send-request validator and the provider-response parser, FUZZ_SECONDS per target
# with hypothesis and again with atheris (libFuzzer), seeded from tests/fixtures/provider; no network.
FUZZ_SECONDS ?= 60
fuzz: $(VENV)/.installed
	$(PY) -m pip install -q $(PIP_LOCKED) requirements-fuzz.txt 2>&1 | $(PIP_QUIET) \
	  || echo "atheris did not install (requirements-fuzz.txt): only the hypothesis part runs" >&2
	$(PY) -m fuzz --seconds $(FUZZ_SECONDS)

clean:
	rm -rf .aws-sam .local bench/out
