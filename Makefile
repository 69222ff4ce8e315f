# diffcap developer entry points. The README's first two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# Tests pin the CPU build of torch that installs from local disk; users are free to pick theirs.
TEST_TORCH ?= torch==2.13.0
# Tests pin PyAV too: its bundled FFmpeg/x264 encode the golden test's input videos
# (tests/golden/inputs.json holds their hashes), so a new PyAV release would otherwise turn a
# fresh CI red with no change of ours. Bumping it is a commit of its own: install the new
# version, run `PYTHONPATH=src python scripts/regen_golden.py` on the unchanged code, and check
# that only inputs.json changed. Users are free to pick theirs (pyproject: av>=12).
TEST_AV ?= av==18.1.1

.PHONY: demo test setup setup-local setup-test system-deps lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

setup: $(PY)
	$(PIP) install --quiet -e .

# The demo captions in-process with a small local model when no API key is set: it needs
# the `local` extra (torch pinned to the CPU build that installs from disk; pick yours).
setup-local: $(PY)
	$(PIP) install --quiet "$(TEST_TORCH)"
	$(PIP) install --quiet -e ".[local]"

setup-test: $(PY) system-deps
	$(PIP) install --quiet "$(TEST_TORCH)"
	$(PIP) install --quiet -e ".[dev,local,cuts,ray,cloud,review,web,onnx,eval,postgres,train]" "$(TEST_AV)"

# Chromium (browser tests), ffmpeg (rotated-video fixtures) and PostgreSQL (request-cache
# tests start a server from its binaries) from Debian, when we are root.
PG_BINDIR = $$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1)
system-deps:
	@if command -v chromium >/dev/null && command -v ffmpeg >/dev/null && [ -x "$(PG_BINDIR)/initdb" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ffmpeg postgresql >/dev/null; \
	else echo "note: install chromium, ffmpeg and postgresql to run the browser, rotation and PostgreSQL tests (they skip otherwise)"; fi

# The main job on a generated sample video: with OPENAI_API_KEY through the OpenAI API, else
# with a small local model fetched on first use. It fails (make exits non-zero) whenever no
# caption was written; caption's exit code 3 means "no usable model here" (offline, no key):
# the message lists the routes.
demo: setup-local
	$(VENV)/bin/diffcap sample demo/sample.mp4
	@$(VENV)/bin/diffcap caption demo/sample.mp4 --out demo/captions.jsonl; rc=$$?; \
	  if [ $$rc -eq 3 ]; then echo "demo: no captions were written: no model is usable on \
	this machine (the line above lists the routes; $(VENV)/bin/diffcap models shows what is \
	missing)"; exit 3; fi; \
	  if [ $$rc -ne 0 ] || [ ! -s demo/captions.jsonl ]; then echo "demo: no caption was \
	written (diffcap caption exited $$rc; see the lines above)"; exit 1; fi

test: setup-test
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) scripts/check_imports.py
	HF_HUB_OFFLINE=1 $(VENV)/bin/pytest

lint: $(PY)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) scripts/check_imports.py

clean:
	rm -rf $(VENV) demo .pytest_cache .ruff_cache .mypy_cache
