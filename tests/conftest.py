import gc
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import real_tokenizers
from helpers import gguf_export, tiny

# `pytest -n 2` runs two workers on two cores: one thread each, for them and the kernels they start.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_configure(config):
    """Once, before `pytest -n` starts its workers: build the tiny model (one core) while the real tokenizers
    and llama.cpp's converter download beside it."""
    if not hasattr(config, "workerinput"):
        with ThreadPoolExecutor() as pool:
            names = {name for name, _ in real_tokenizers.PAIRS.values()}
            fetched = [pool.submit(real_tokenizers.folder, name) for name in names] + [pool.submit(gguf_export.converter)]
            tiny.path()
            for fetch in fetched:
                fetch.result()


def pytest_collection_finish(session):
    """The modules every test imported (torch, transformers: about 600,000 objects) live as long as the
    process: frozen, the garbage collector no longer walks them on each full collection (seconds per worker)."""
    gc.freeze()


@pytest.fixture(scope="session")
def tiny_path():
    return tiny.path()


@pytest.fixture
def tiny_tokenizer(tiny_path):
    return AutoTokenizer.from_pretrained(tiny_path)


@pytest.fixture(scope="session")
def tiny_model(tiny_path):
    return AutoModelForCausalLM.from_pretrained(tiny_path)
