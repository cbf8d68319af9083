import os

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import real_tokenizers
from helpers import tiny

# `pytest -n 2` runs two workers on two cores: one thread each, for them and the kernels they start.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_configure(config):
    """Build the tiny model and fetch the real tokenizers once, before `pytest -n` starts its workers."""
    if not hasattr(config, "workerinput"):
        tiny.path()
        for name in {name for name, _ in real_tokenizers.PAIRS.values()}:
            real_tokenizers.folder(name)


def pytest_xdist_make_scheduler(config, log):
    """Under `pytest -n`: the notebooks run in order and the demo checks read what they wrote, so they
    go to one worker together; every other test goes wherever a worker is free."""
    from xdist.scheduler import LoadScopeScheduling

    class DemoTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return "demo" if nodeid.startswith(("notebooks/", "tests/test_demo.py")) else nodeid

    return DemoTogether(config, log)


@pytest.fixture(scope="session")
def tiny_path():
    return tiny.path()


@pytest.fixture
def tiny_tokenizer(tiny_path):
    return AutoTokenizer.from_pretrained(tiny_path)


@pytest.fixture(scope="session")
def tiny_model(tiny_path):
    return AutoModelForCausalLM.from_pretrained(tiny_path)


@pytest.fixture
def no_form_overrides(monkeypatch):
    """The notebook runs set TUTORIAL_* for the whole session; tests of the form values give their own."""
    for name in [n for n in os.environ if n.startswith("TUTORIAL_")]:
        monkeypatch.delenv(name)
