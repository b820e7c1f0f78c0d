# capmap — the two front doors: `make demo` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
STORE   ?=
DATA_DIR ?=

.PHONY: demo test install lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/capmap demo $(if $(STORE),--store $(STORE)) $(if $(DATA_DIR),--data-dir $(DATA_DIR))

test: $(STAMP) lint
	@mkdir -p out
	$(BIN)/python -m pytest --junitxml=out/test-report.xml $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check graph ingest clustering matching api tests bench
	$(BIN)/mypy graph ingest clustering matching api

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
