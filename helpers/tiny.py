"""A tiny Japanese Llama built offline from this repository's own text, for CI and `make demo`.

It has its own SentencePiece tokenizer (`tokenizer.model`, which llama.cpp's converter reads; byte
fallback, digits are single tokens, `▁` for spaces), an Alpaca-style chat template that writes
the BOS itself, pad != eos, and a short pre-training on `datasets/tiny_corpus_ja.txt` plus the
general questions in `datasets/tiny_pretrain_qa.csv`, so that it is a small model that already
knows some things, like the real models the notebooks use. Built once and cached under a key
made from its inputs and the versions of the libraries that build it: a change to either rebuilds it,
so Colab's versions (the Colab-versions test run) build and use a tiny model of their own.
"""
from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import io
import json
import random
from pathlib import Path

import torch

from . import REPO_ROOT, cache
from .env import prepare_cpu
from .prompts import IGNORE_INDEX, qa_messages, training_example

CORPUS = REPO_ROOT / "datasets" / "tiny_corpus_ja.txt"
QA = REPO_ROOT / "datasets" / "tiny_pretrain_qa.csv"
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
    "{% elif m['role'] == 'user' %}### 指示:\n{{ m['content'] }}\n\n"
    "{% else %}### 応答:\n{{ m['content'] }}{{ eos_token }}\n\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}### 応答:\n{% endif %}")
SPECIAL = ["<unk>", "<s>", "</s>", "<pad>"]
ALPHABET = ([chr(c) for c in range(0x3041, 0x3097)] + [chr(c) for c in range(0x30A1, 0x30FB)]
            + [chr(c) for c in range(0x20, 0x7F)] + [chr(c) for c in range(0xFF01, 0xFF5F)]
            + list("ー、。「」・？！\n"))
MODEL_SHAPE = dict(hidden_size=128, intermediate_size=384, num_hidden_layers=4,
                   num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256)
VOCAB_SIZE = 1456  # 256 of them are bytes (byte fallback)
STEPS, BATCH, LR, SEED = 600, 16, 3e-3, 0
BUILT_WITH = ("torch", "transformers", "tokenizers", "sentencepiece")


def versions() -> dict[str, str]:
    """The versions of the libraries that build the tiny model, as installed here."""
    return {name: importlib.metadata.version(name) for name in BUILT_WITH}


def _key() -> str:
    digest = hashlib.sha256()
    for path in (CORPUS, QA, Path(__file__)):
        digest.update(path.read_bytes())
    digest.update(json.dumps(versions(), sort_keys=True).encode())
    return digest.hexdigest()[:12]


def _qa_rows() -> list[tuple[str, str]]:
    with QA.open(encoding="utf-8") as f:
        return [(row["instruction"], row["output"]) for row in csv.DictReader(f)]


def _train_tokenizer(lines: list[str]):
    """A SentencePiece BPE model (byte fallback, single digits, each line break a token, `▁` for spaces)
    and the same tokenizer for transformers: its pieces and merges in a `tokenizers` BPE. No `▁` is put
    in front of a text (`add_prefix_space` false, which llama.cpp's converter passes on), so a word the
    pre-training sentences start with is the same token inside an answer."""
    import sentencepiece
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors
    from transformers import PreTrainedTokenizerFast

    proto = io.BytesIO()
    required = "".join(c for c in ALPHABET if c not in " \n")
    # Every character once more, on its own: sentencepiece 0.2.2 aborts on a required one the text lacks, and one
    # more of each keeps their order by frequency (single characters add no pairs): 0.2.3's tokenizer of the text alone.
    once = sorted((set(required) | set("".join(lines))) - {"\n"})
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines + once), model_writer=proto, model_type="bpe", vocab_size=VOCAB_SIZE,
        byte_fallback=True, split_digits=True, user_defined_symbols=["\n"],  # "\n" a token of its own
        required_chars=required, character_coverage=1.0,
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=False,
        split_by_unicode_script=False, split_by_whitespace=False, max_sentence_length=1 << 16,  # pieces like "です。"
        unk_id=0, bos_id=1, eos_id=2, pad_id=3, num_threads=1, minloglevel=2)
    spm = sentencepiece.SentencePieceProcessor(model_proto=proto.getvalue())
    vocab = {spm.id_to_piece(i): i for i in range(spm.get_piece_size())}
    pieces = [p for p, i in vocab.items() if not (spm.is_unknown(i) or spm.is_control(i) or spm.is_byte(i))]
    merges = sorted((-spm.get_score(vocab[p]), vocab[p], p[:cut], p[cut:])  # SentencePiece merges by score
                    for p in pieces for cut in range(1, len(p)) if p[:cut] in vocab and p[cut:] in vocab)
    tok = Tokenizer(models.BPE(vocab, [(a, b) for *_, a, b in merges], unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL])
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.post_processor = processors.TemplateProcessing(  # like Llama tokenizers: BOS in front
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                                        eos_token="</s>", pad_token="<pad>", add_prefix_space=False)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer, proto.getvalue()


def _examples(tokenizer) -> list[dict]:
    """Plain sentences (every token learned) and chat-formatted Q/A (answers learned)."""
    examples = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        for sentence in filter(None, line.split("。")):
            ids = tokenizer(sentence + "。").input_ids + [tokenizer.eos_token_id]
            examples.append({"input_ids": ids, "labels": ids})
    for question, answer in _qa_rows():
        examples.append(training_example(tokenizer, qa_messages(question, answer), MODEL_SHAPE["max_position_embeddings"]))
    return examples


def _pretrain(model, examples: list[dict], pad_id: int) -> None:
    prepare_cpu()
    rng = random.Random(SEED)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LR, total_steps=STEPS, pct_start=0.1)
    model.train()
    for _ in range(STEPS):
        batch = rng.sample(examples, BATCH)
        width = max(len(e["input_ids"]) for e in batch)
        ids = torch.tensor([e["input_ids"] + [pad_id] * (width - len(e["input_ids"])) for e in batch])
        labels = torch.tensor([e["labels"] + [IGNORE_INDEX] * (width - len(e["labels"])) for e in batch])
        loss = model(input_ids=ids, attention_mask=(ids != pad_id).long(), labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    model.eval()


def build(target: Path) -> None:
    """Train the tokenizer, pre-train the model, save both to `target`.

    One CPU thread, so that the same inputs give the same bytes however many threads the caller uses.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _build(target)
    finally:
        torch.set_num_threads(threads)


def _build(target: Path) -> None:
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    qa = _qa_rows()
    tokenizer, sentencepiece_model = _train_tokenizer(lines + [f"### 指示:\n{q}\n\n### 応答:\n{a}" for q, a in qa])
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=True, **MODEL_SHAPE)
    model = LlamaForCausalLM(config)
    _pretrain(model, _examples(tokenizer), tokenizer.pad_token_id)
    model.generation_config = GenerationConfig(bos_token_id=config.bos_token_id,
                                               eos_token_id=config.eos_token_id,
                                               pad_token_id=config.pad_token_id)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    (target / "tokenizer.model").write_bytes(sentencepiece_model)  # what llama.cpp's converter reads
    (target / "tiny_build.json").write_text(json.dumps({"key": _key(), "steps": STEPS, "versions": versions()}))


def path() -> Path:
    """Local folder of the tiny model, built on first use (about a minute on 2 CPU cores)."""
    target = cache.folder() / f"tiny-ja-llama-{_key()}"
    return cache.built(target, build, "tiny_build.json", say=f"小さな練習用モデルを作っています(初回のみ、1 分ほど): {target}")
