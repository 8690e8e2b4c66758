# One-command entry points; everything installs into a local virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FIXTURE ?= fixtures/models/cnn_bn/k3.keras

.PHONY: run test lint fixtures bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[probe,dev]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/kinspect $(FIXTURE)

test: $(BIN)/.installed
	$(BIN)/ruff check inspector tests fixtures/make_fixtures.py benchmarks
	KINSPECT_STRICT=1 $(BIN)/python -m pytest -q -n 2 --dist loadgroup

lint: $(BIN)/.installed
	$(BIN)/ruff check inspector tests fixtures/make_fixtures.py benchmarks

fixtures: $(BIN)/.installed
	$(BIN)/python fixtures/make_fixtures.py

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/static_vs_keras.py

clean:
	rm -rf $(VENV) build *.egg-info
