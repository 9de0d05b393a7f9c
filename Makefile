# Two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint clean install kernel notebooks

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch==2.13.0 (pinned in pyproject.toml) is the CPU build; installing it first keeps
# pip from ever resolving a CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/gridformer demo
	@echo
	@echo "Next: 'source $(VENV)/bin/activate' puts gridformer and this Python on your PATH;"
	@echo "'make kernel' registers the environment as the Jupyter kernel 'gridformer'."

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

# Jupyter: the kernel "Python (gridformer)" runs this environment's Python (user-level spec).
kernel: $(STAMP)
	$(BIN)/python -m ipykernel install --user --name gridformer --display-name "Python (gridformer)"

# Re-execute the example notebooks and store them with their outputs.
notebooks: $(STAMP)
	$(BIN)/python notebooks/execute.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
