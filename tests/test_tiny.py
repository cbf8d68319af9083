import csv
import importlib.metadata
import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from helpers import models, tiny
from helpers.env import REPO_ROOT
from helpers.generation import answer

pytestmark = pytest.mark.colab  # run under Colab's versions too (make test)


def test_resolve_tiny_is_the_cached_build(tiny_path):
    assert models.resolve("tiny") == str(tiny_path) == str(tiny.path())
    assert models.resolve("llm-jp/llm-jp-3.1-1.8b-instruct4") == "llm-jp/llm-jp-3.1-1.8b-instruct4"


def test_tokenizer_properties(tiny_tokenizer):
    tokens = tiny_tokenizer.convert_ids_to_tokens(tiny_tokenizer("標高は3776メートル", add_special_tokens=False).input_ids)
    assert [t for t in tokens if any(c.isdigit() for c in t)] == ["3", "7", "7", "6"]
    assert tiny_tokenizer.pad_token_id != tiny_tokenizer.eos_token_id
    assert tiny_tokenizer.chat_template
    assert tiny_tokenizer.decode(tiny_tokenizer("日本の首都は東京です。", add_special_tokens=False).input_ids) == "日本の首都は東京です。"


def test_pretrained_base_knows_general_facts_not_fictional_ones(tiny_model, tiny_tokenizer):
    with open(REPO_ROOT / "datasets" / "baseline_questions.csv", encoding="utf-8") as f:
        general = list(csv.DictReader(f))
    with open(REPO_ROOT / "datasets" / "sample_fictional_facts.csv", encoding="utf-8") as f:
        fictional = list(csv.DictReader(f))
    known = answer(tiny_model, tiny_tokenizer, [r["instruction"] for r in general], max_new_tokens=16)
    assert known == [r["output"] for r in general]
    unknown = answer(tiny_model, tiny_tokenizer, [r["instruction"] for r in fictional], max_new_tokens=16)
    assert sum(a == r["output"] for a, r in zip(unknown, fictional)) == 0


def test_build_is_deterministic(tmp_path, monkeypatch):
    """Two builds give the same bytes, whatever number of threads the caller uses (a short pre-training:
    the same code as the cached model's). Across CPUs they differ: AVX2 and AVX-512 kernels round
    differently, and pre-training amplifies that."""
    monkeypatch.setattr(tiny, "STEPS", 20)
    threads = torch.get_num_threads()
    builds = [tmp_path / "one", tmp_path / "two"]
    for count, folder in zip((1, 2), builds):
        torch.set_num_threads(count)
        try:
            tiny.build(folder)
        finally:
            torch.set_num_threads(threads)
    one, two = (AutoModelForCausalLM.from_pretrained(folder).state_dict() for folder in builds)
    assert one.keys() == two.keys() and all(torch.equal(one[k], two[k]) for k in one)
    assert (builds[0] / "tokenizer.json").read_text() == (builds[1] / "tokenizer.json").read_text()
    assert (builds[0] / "tokenizer.model").read_bytes() == (builds[1] / "tokenizer.model").read_bytes()


def test_cache_key_follows_inputs(monkeypatch, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(tiny.CORPUS.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(tiny, "CORPUS", corpus)
    before = tiny._key()
    corpus.write_text(corpus.read_text(encoding="utf-8") + "新しい文です。\n", encoding="utf-8")
    assert tiny._key() != before
    monkeypatch.setattr(tiny, "versions", lambda: {"transformers": "0.0.0"})
    assert tiny._key() != before  # another library version builds its own


def test_the_tiny_model_in_use_was_built_with_the_libraries_running_now(tiny_path):
    """Under Colab's versions too (`make test` runs this there): its own build, not one made with the newest pins."""
    built = json.loads((tiny_path / "tiny_build.json").read_text())["versions"]
    assert built == tiny.versions()
    assert built["sentencepiece"] == importlib.metadata.version("sentencepiece")


def test_the_tokenizer_trains_when_a_required_character_is_missing_from_the_text():
    """sentencepiece 0.2.2 (Colab's) aborted the whole process on a required character the text never has."""
    lines = tiny.CORPUS.read_text(encoding="utf-8").splitlines()
    assert "ゑ" in tiny.ALPHABET and not any("ゑ" in line for line in lines)
    tokenizer, _ = tiny._train_tokenizer(lines)
    assert tokenizer.convert_ids_to_tokens(tokenizer("ゑ", add_special_tokens=False).input_ids) == ["ゑ"]
