"""Take the tuned model home (05): GGUF files for llama.cpp, Ollama and LM Studio, and an Ollama Modelfile.

llama.cpp's own converters (`convert_hf_to_gguf.py`, `convert_lora_to_gguf.py` and its `gguf-py`) come
from the llama-cpp-python source distribution on PyPI, pinned and checked by sha256, downloaded into
the cache the first time an export is asked for. They run with the packages the notebooks already
have (torch, transformers, numpy, sentencepiece); nothing is compiled.

A Unigram `tokenizer.json` (llm-jp-3's) is one the converter cannot read. For a known one, the SentencePiece
model it was made from is fetched (pinned, checked by sha256 and piece by piece) and written as llama.cpp's
Unigram tokenizer (UGM), which splits text as the Hugging Face tokenizer does (see `python -m helpers.gguf_export`).
"""
from __future__ import annotations

import hashlib
import json
import math
import runpy
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from . import REPO_ROOT, cache
from .errors import TutorialError
from .prompts import adds_bos, answer_closing, answer_opening, format_chat, stop_ids

LLAMA_CPP_PYTHON = "0.3.36"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
KEEP = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/", "LICENSE")
TYPES = ("f16", "q8_0")  # what the converter writes without a compiler (Q4_K_M needs llama.cpp's quantizer)
MODELFILE = "Modelfile"
# Ollama's template variables; the chat template is rendered with them in place of the messages
SYSTEM, PROMPT, RESPONSE = "{{ .System }}", "{{ .Prompt }}", "{{ .Response }}"
UNSUPPORTED = ("llama.cpp の変換ツールが、このモデルのトークナイザー (文字とトークンの対応表) を知りません。"
               "GGUF にできるのは変換ツールが対応するモデルだけです (このリポジトリで確かめたのは llm-jp-3 系、Qwen/Qwen2.5 系と練習用の tiny)。"
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
# SentencePiece models of Unigram tokenizer.json files the converter cannot read: name → (pieces, URL at a fixed
# commit, sha256). llm-jp-3 and 3.1 (their Hub repos have no tokenizer.model): the model their tokenizer.json was
# made from, llm-jp's own (Apache-2.0, github.com/llm-jp/llm-jp-tokenizer; tests/fixtures/llm-jp-3/SOURCE.md).
SENTENCEPIECE = {
    "llm-jp-3": (99574, "https://raw.githubusercontent.com/llm-jp/llm-jp-tokenizer/925b87aa2b55cebcb66a36a80431e28c533f70b5/"
                 "models/ver3.0/llm-jp-tokenizer-100k.ver3.0b1.model",
                 "9f1ece69671e1f73f850981304c26698a7c8e1853a5d87368bd16e536fb69cfa"),
}


def converter() -> Path:
    """The folder with llama.cpp's converters (downloaded once, about 76 MB, then cached)."""
    return cache.built(cache.folder() / f"llama.cpp-converter-{LLAMA_CPP_PYTHON}", _unpack_converter, "convert_hf_to_gguf.py",
                       say=f"llama.cpp の変換ツールを PyPI から取得しています (llama-cpp-python {LLAMA_CPP_PYTHON} のソース、初回のみ)")


def _unpack_converter(staging: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                              f"llama-cpp-python=={LLAMA_CPP_PYTHON}", "-d", tmp], capture_output=True, text=True)
        archives = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if got.returncode or not archives:
            raise TutorialError("llama.cpp の変換ツール (llama-cpp-python のソース) を PyPI から取得できませんでした。"
                                f"インターネット接続を確かめて、もう一度実行してください。\npip の出力: {got.stderr.strip()[-500:]}")
        if hashlib.sha256(archives[0].read_bytes()).hexdigest() != SDIST_SHA256:
            raise TutorialError(f"{archives[0].name} の中身が、確かめた版と違います (sha256 が一致しません)。使わずに止めます。")
        with tarfile.open(archives[0]) as archive:
            root = f"llama_cpp_python-{LLAMA_CPP_PYTHON}/vendor/llama.cpp/"
            for member in archive.getmembers():
                name = member.name.removeprefix(root)
                if member.name.startswith(root) and name.startswith(KEEP) and (member.isfile() or member.isdir()):
                    member.name = name
                    archive.extract(member, staging, filter="data")


def sentencepiece_file(name: str) -> Path:
    """Where the SentencePiece model `name` is kept once fetched."""
    return cache.folder() / "sentencepiece" / f"{name}.model"


def _fetch(name: str) -> Path:
    _, url, sha256 = SENTENCEPIECE[name]
    path = sentencepiece_file(name)
    if not path.exists():
        print(f"{name} のトークナイザーの SentencePiece モデル (tokenizer.model) を取得しています (初回のみ): {url}")
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                payload = response.read()
        except OSError as exc:
            raise TutorialError(f"GGUF にできませんでした。llama.cpp の変換ツールは {name} のトークナイザー (tokenizer.json) を読めないので、"
                                f"同じ語彙の tokenizer.model を渡します。それを {url} から取得できませんでした ({exc})。"
                                "インターネット接続を確かめて、もう一度実行してください。") from None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".partial").write_bytes(payload)
        path.with_suffix(".partial").replace(path)
    if hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        path.unlink()
        raise TutorialError(f"{name} の tokenizer.model ({url}) の中身が、確かめた版と違います (sha256 が一致しません)。使わずに止めます。")
    return path


def sentencepiece_model(model_dir: Path) -> Path | None:
    """For a Unigram tokenizer.json: its own tokenizer.model, or a known one with exactly its pieces and scores; else None."""
    path = Path(model_dir) / "tokenizer.json"
    model = json.loads(path.read_text(encoding="utf-8"))["model"] if path.exists() else {}
    if model.get("type") != "Unigram":
        return None
    if (Path(model_dir) / "tokenizer.model").exists():
        return Path(model_dir) / "tokenizer.model"
    from sentencepiece import SentencePieceProcessor
    for name, (pieces, _, _) in SENTENCEPIECE.items():
        if pieces == len(model["vocab"]):
            model_file = _fetch(name)
            processor = SentencePieceProcessor(model_file=str(model_file))
            if processor.vocab_size() == pieces and all(  # control pieces are renamed in tokenizer.json (<PAD|LLM-jp>)
                    (processor.is_control(i) or processor.id_to_piece(i) == piece)
                    and math.isclose(processor.get_score(i), score, rel_tol=1e-6) for i, (piece, score) in enumerate(model["vocab"])):
                return model_file
    return None


def _convert(model_dir: Path, *options: str) -> None:
    """`convert_hf_to_gguf.py` on `model_dir` (for a Unigram tokenizer with its SentencePiece model: `python -m helpers.gguf_export`)."""
    script = str(converter().resolve() / "convert_hf_to_gguf.py")
    spm = sentencepiece_model(model_dir)
    if spm is None:
        return _run([sys.executable, script, str(model_dir), *options], str(model_dir))
    with tempfile.TemporaryDirectory() as tmp:
        # the folder's files and the SentencePiece model, linked (nothing is written into `model_dir`), under its name
        staged = Path(tmp) / Path(model_dir).resolve().name  # (which the converter writes into the GGUF)
        staged.mkdir()
        for name, file in ({f.name: f for f in Path(model_dir).iterdir()} | {"tokenizer.model": spm}).items():
            try:
                (staged / name).symlink_to(file.resolve())
            except OSError:  # no symbolic links (Windows without developer mode)
                shutil.copy(file, staged / name)
        _run([sys.executable, "-m", "helpers.gguf_export", script, str(staged), *options], str(model_dir), cwd=REPO_ROOT)


def check(tokenizer, base: str) -> None:
    """Before merging: does the converter take this tokenizer? (its vocabulary alone, in seconds); if not, a TutorialError why."""
    from transformers import AutoConfig
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / Path(base).name
        AutoConfig.from_pretrained(base).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        _convert(folder, "--vocab-only", "--outfile", str(Path(tmp) / "vocab.gguf"))


def _run(command: list[str], what: str, cwd: Path | None = None) -> None:
    print("$", shlex.join(command))
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    if done.returncode:
        lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("INFO:")]
        reason = next((why for signs, why in REASONS if any(sign in done.stderr for sign in signs)), "")
        raise TutorialError(f"{what} を GGUF にできませんでした。" + reason +
                            "\n(変換ツールの出力の最後:)\n" + "\n".join(lines[-(1 if reason else 12):]))


def model_to_gguf(model_dir: Path, out: Path, outtype: str) -> Path:
    """`convert_hf_to_gguf.py`: a Hugging Face model folder (merged) as one GGUF file of `outtype`."""
    if outtype not in TYPES:
        raise TutorialError(f"GGUF の型 {outtype!r} は選べません。{' / '.join(TYPES)} のどれかにしてください。")
    _convert(Path(model_dir), "--outfile", str(Path(out).resolve()), "--outtype", outtype)
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


def _unigram(script: str, *args: str) -> None:
    """`convert_hf_to_gguf.py ARGS` writing the SentencePiece Unigram vocabulary as llama.cpp's Unigram tokenizer (UGM)."""
    # The converter's own choice, "llama", merges pieces pairwise: with llm-jp-3's vocabulary llama.cpp then split
    # 84 of 318 texts of datasets/ otherwise than the Hugging Face tokenizer (and training) did; UGM, none of them.
    sys.path[:0] = [str(Path(script).parent), str(Path(script).parent / "gguf-py")]
    import gguf
    from conversion.base import SentencePieceTokenTypes as Types, TextModel
    from transformers import AutoTokenizer

    used = []

    def set_vocab(self, add_to_gguf=True):
        used.append(True)
        tokens, scores, types = self._create_vocab_sentencepiece()
        known = set(tokens)
        for i, token in enumerate(tokens):  # UGM has no byte fallback: the ASCII bytes no piece is (\n, \t) as that character
            if types[i] == Types.BYTE and 0 < (byte := int(token[3:5], 16)) < 0x80 and byte != 0x20 and bytes([byte]) not in known:
                tokens[i], types[i] = bytes([byte]), Types.NORMAL
        tokenizer = AutoTokenizer.from_pretrained(self.dir_model)
        for i, added in tokenizer.added_tokens_decoder.items():  # control pieces by their Hugging Face names (<PAD|LLM-jp>)
            if i < len(tokens) and types[i] == Types.CONTROL:
                tokens[i] = added.content.encode()
        spaced = tokenizer.convert_ids_to_tokens(tokenizer("a  b", add_special_tokens=False)["input_ids"])
        writer = self.gguf_writer
        writer.add_tokenizer_model("t5")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_add_space_prefix(spaced[0].startswith("▁"))  # as the Hugging Face tokenizer does
        writer.add_remove_extra_whitespaces("▁▁" not in "".join(spaced))
        gguf.SpecialVocab(self.dir_model, n_vocab=len(tokens)).add_to_gguf(writer)
        writer.add_add_bos_token(adds_bos(tokenizer))  # what the prompts were tokenized with (the template may write <s>)
        writer.add_add_eos_token(False)  # not after a prompt, whatever tokenizer.json's post-processor says

    TextModel._set_vocab_sentencepiece = set_vocab
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")
    if not used:  # a converter of another version: its own tokenizer would split text otherwise than training did
        sys.exit("llama.cpp の変換ツールが、SentencePiece の語彙を書く関数 (_set_vocab_sentencepiece) を使いませんでした。"
                 "変換ツールの版が、確かめた版と違います。GGUF にせず、Hugging Face 形式のまま使ってください。")


if __name__ == "__main__":
    _unigram(*sys.argv[1:])
