import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from helpers import tiny


@pytest.fixture(scope="session")
def tiny_path():
    return tiny.path()


@pytest.fixture
def tiny_tokenizer(tiny_path):
    return AutoTokenizer.from_pretrained(tiny_path)


@pytest.fixture(scope="session")
def tiny_model(tiny_path):
    return AutoModelForCausalLM.from_pretrained(tiny_path)
