VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo test test-fast test-dist lint format bench clean

$(VENV)/.installed: pyproject.toml setup.py fairtune/augment/_speedups.c fairtune/augment/_engine.py
	test -d $(VENV) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# Install the CPU build of torch only when the environment has no torch at all (never replace the user's).
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev]"
	touch $(VENV)/.installed

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/fairtune demo --output-dir outputs/demo

test: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 --dist loadgroup

test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 -m "not slow"

test-dist: $(VENV)/.installed
	$(PY) -m pytest -q -m distributed

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check fairtune tests bench
	$(VENV)/bin/ruff format --check fairtune tests bench
	$(VENV)/bin/lint-imports

format: $(VENV)/.installed
	$(VENV)/bin/ruff format fairtune tests bench
	$(VENV)/bin/ruff check --fix fairtune tests bench

bench: $(VENV)/.installed
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) outputs .pytest_cache

.PHONY: bench-real
bench-real: $(VENV)/.installed  # RedditBias benchmark (bench/bench_real.py; data from ../shared/data; not in CI)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) bench/bench_real.py $(ARGS)
