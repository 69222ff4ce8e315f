# diffcap developer entry points. The README's first two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# Tests pin the CPU build of torch that installs from local disk; users are free to pick theirs.
TEST_TORCH ?= torch==2.13.0

.PHONY: demo test setup setup-test system-deps lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

setup: $(PY)
	$(PIP) install --quiet -e .

setup-test: $(PY) system-deps
	$(PIP) install --quiet "$(TEST_TORCH)"
	$(PIP) install --quiet -e ".[dev,local,cuts,ray,review,web,onnx]"

# Chromium (browser tests) and ffmpeg (rotated-video fixtures) from Debian, when we are root.
system-deps:
	@if command -v chromium >/dev/null && command -v ffmpeg >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ffmpeg >/dev/null; \
	else echo "note: install chromium and ffmpeg to run the browser and rotation tests (they skip otherwise)"; fi

# The main job on a generated sample video. Exit code 3 means "keyframes written, no model
# configured": the message says how to point diffcap at a model (see README, "Models").
demo: setup
	$(VENV)/bin/diffcap sample demo/sample.mp4
	$(VENV)/bin/diffcap caption demo/sample.mp4 --out demo/captions.jsonl; \
	  rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 3 ]

test: setup-test
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/mypy
	HF_HUB_OFFLINE=1 $(VENV)/bin/pytest

lint: $(PY)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) demo .pytest_cache .ruff_cache .mypy_cache
