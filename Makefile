# make demo / make test / make lab / make notebooks
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench bench-gpu lab notebooks clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)  ## run every notebook (01→05) on the tiny model, print before/after numbers
	$(PY) -m helpers.notebooks run outputs

test: $(STAMP)  ## unit tests + every notebook on the tiny model
	$(PY) -m pytest

bench: $(STAMP)  ## tutorial batching vs naive padding: tokens/s and peak memory (outputs/bench.json)
	$(PY) -m helpers.bench

bench-gpu: $(STAMP)  ## the same on a 1.8B-shaped Llama under T4 limits (needs a CUDA GPU)
	$(PY) -m helpers.bench --gpu

lab: $(STAMP)  ## Jupyter Lab on the notebooks
	$(PY) -m pip install -q jupyterlab==4.6.6
	$(PY) -m jupyter lab notebooks

notebooks: $(STAMP)  ## after editing notebooks/*.py or the URL in pyproject.toml
	$(PY) -m helpers.notebooks sync

clean:
	rm -rf outputs .pytest_cache
