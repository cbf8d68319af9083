import gc
import os

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from helpers import tiny

# `pytest -n 2` runs two workers on two cores: one thread each, for them and the kernels they start.
# What a test needs (the tiny model, a real tokenizer) is built or fetched when it first asks, once
# (helpers.cache: two workers asking at once get the same folder).
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_collection_finish(session):
    """The modules every test imported (torch, transformers: about 600,000 objects) live as long as the
    process: frozen, the garbage collector no longer walks them on each full collection (seconds per worker)."""
    gc.collect()
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
