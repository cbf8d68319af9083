"""Take the tuned model home (05): GGUF files for llama.cpp, Ollama and LM Studio, and an Ollama Modelfile.

llama.cpp's own converters (`convert_hf_to_gguf.py`, `convert_lora_to_gguf.py` and its `gguf-py`) come
from the llama-cpp-python source distribution on PyPI, pinned and checked by sha256, downloaded into
the cache the first time an export is asked for. They run with the packages the notebooks already
have (torch, transformers, numpy); nothing is compiled.
"""
from __future__ import annotations

import hashlib
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from .errors import TutorialError
from .prompts import adds_bos, answer_closing, answer_opening, format_chat, stop_ids
from .tiny import cache_dir

LLAMA_CPP_PYTHON = "0.3.36"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
KEEP = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/", "LICENSE")
TYPES = ("f16", "q8_0")  # what the converter writes without a compiler (Q4_K_M needs llama.cpp's quantizer)
MODELFILE = "Modelfile"
# Ollama's template variables; the chat template is rendered with them in place of the messages
SYSTEM, PROMPT, RESPONSE = "{{ .System }}", "{{ .Prompt }}", "{{ .Response }}"
UNSUPPORTED = ("llama.cpp の変換ツールが、このモデルのトークナイザー (文字とトークンの対応表) を知りません。"
               "GGUF にできるのは変換ツールが対応するモデルだけです (このリポジトリで確かめたのは Qwen/Qwen2.5 系と練習用の tiny。llm-jp-3 の tokenizer.json は受け付けません)。"
               "対応するモデルを 03 の MODEL に選んで学習し直すか、GGUF にせず Hugging Face 形式のまま使ってください"
               " (このノートブックの API サーバー)。")
# What the converter's error says → why, in Japanese
REASONS = [
    (("pre-tokenizer was not recognized", "tokenizer.model", "Cannot find Llama BPE tokenizer"), UNSUPPORTED),
    (("tokenizer.vocab.values()) < vocab_size",),
     "トークナイザーに、モデルの語彙の大きさ (config.json の vocab_size) を超える ID のトークンがあり、llama.cpp の変換ツールが受け付けません"
     " (Gemma 3 270M と、画像用のトークン <image_soft_token> を持つ Gemma 3 のトークナイザーの組み合わせなど)。"
     "GGUF にせず、Hugging Face 形式のまま使ってください (このノートブックの API サーバー)。"),
]


def converter() -> Path:
    """The folder with llama.cpp's converters (downloaded once, about 76 MB, then cached)."""
    target = cache_dir() / f"llama.cpp-converter-{LLAMA_CPP_PYTHON}"
    if (target / "convert_hf_to_gguf.py").exists():
        return target
    print(f"llama.cpp の変換ツールを PyPI から取得しています (llama-cpp-python {LLAMA_CPP_PYTHON} のソース、初回のみ)")
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                              f"llama-cpp-python=={LLAMA_CPP_PYTHON}", "-d", tmp], capture_output=True, text=True)
        archives = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if got.returncode or not archives:
            raise TutorialError("llama.cpp の変換ツール (llama-cpp-python のソース) を PyPI から取得できませんでした。"
                                f"インターネット接続を確かめて、もう一度実行してください。\npip の出力: {got.stderr.strip()[-500:]}")
        if hashlib.sha256(archives[0].read_bytes()).hexdigest() != SDIST_SHA256:
            raise TutorialError(f"{archives[0].name} の中身が、確かめた版と違います (sha256 が一致しません)。使わずに止めます。")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent))
        with tarfile.open(archives[0]) as archive:
            root = f"llama_cpp_python-{LLAMA_CPP_PYTHON}/vendor/llama.cpp/"
            for member in archive.getmembers():
                name = member.name.removeprefix(root)
                if member.name.startswith(root) and name.startswith(KEEP) and (member.isfile() or member.isdir()):
                    member.name = name
                    archive.extract(member, staging, filter="data")
    try:
        staging.rename(target)
    except OSError:  # another process (a second test worker) got there first
        shutil.rmtree(staging)
    return target


def _run(command: list[str], what: str) -> None:
    print("$", shlex.join(command))
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("INFO:")]
        reason = next((why for signs, why in REASONS if any(sign in done.stderr for sign in signs)), "")
        raise TutorialError(f"{what} を GGUF にできませんでした。" + reason +
                            "\n(変換ツールの出力の最後:)\n" + "\n".join(lines[-(1 if reason else 12):]))


def model_to_gguf(model_dir: Path, out: Path, outtype: str) -> Path:
    """`convert_hf_to_gguf.py`: a Hugging Face model folder (merged) as one GGUF file of `outtype`."""
    if outtype not in TYPES:
        raise TutorialError(f"GGUF の型 {outtype!r} は選べません。{' / '.join(TYPES)} のどれかにしてください。")
    _run([sys.executable, str(converter() / "convert_hf_to_gguf.py"), str(model_dir), "--outfile", str(out),
          "--outtype", outtype], str(model_dir))
    return out


def adapter_to_gguf(adapter_dir: Path, base: str, out: Path) -> Path:
    """`convert_lora_to_gguf.py`: the LoRA adapter alone (f16), for a GGUF of the same base model.
    `base` is a local folder (its config.json is read) or a Hub id."""
    where = ["--base", base] if Path(base).is_dir() else ["--base-model-id", base]
    _run([sys.executable, str(converter() / "convert_lora_to_gguf.py"), str(adapter_dir), *where, "--outfile", str(out),
          "--outtype", "f16"], str(adapter_dir))
    return out


def ollama_template(tokenizer) -> str:
    """The chat template as an Ollama (Go) template: the model's own template rendered with Ollama's
    variables in place of the messages, so the text around them is exactly what training used."""
    def render(messages) -> str:
        text = format_chat(tokenizer, messages)
        return text.removeprefix(tokenizer.bos_token) if adds_bos(tokenizer) else text  # llama.cpp adds the BOS

    bare = render([{"role": "user", "content": PROMPT}])
    try:
        with_system = render([{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}])
    except TutorialError:  # templates without a system role (Gemma 2)
        with_system = bare
    turn = bare if with_system == bare else f"{{{{ if .System }}}}{with_system}{{{{ else }}}}{bare}{{{{ end }}}}"
    return turn + answer_opening(tokenizer) + RESPONSE + answer_closing(tokenizer)


def modelfile(tokenizer, gguf_name: str) -> str:
    """An Ollama Modelfile: the GGUF, the chat template, and the stop tokens training used."""
    stops = [tokenizer.convert_ids_to_tokens(i) for i in stop_ids(tokenizer)]
    lines = [f"# ollama create 好きな名前 -f {MODELFILE}", f"FROM ./{gguf_name}",
             f'TEMPLATE """{ollama_template(tokenizer)}"""']
    lines += [f'PARAMETER stop "{stop}"' for stop in stops]
    return "\n".join(lines + ["PARAMETER temperature 0", ""])
