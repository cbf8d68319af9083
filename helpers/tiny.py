"""A tiny Japanese Llama built offline from this repository's own text, for CI and `make demo`.

It has its own tokenizer (digits are single tokens), an Alpaca-style chat template that writes
the BOS itself, pad != eos, and a short pre-training on `datasets/tiny_corpus_ja.txt` plus the
general questions in `datasets/tiny_pretrain_qa.csv`, so that it is a small model that already
knows some things, like the real models the notebooks use. Built once and cached under a key
made from its inputs; a change to them rebuilds it.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import torch

from .env import REPO_ROOT, prepare_cpu
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
VOCAB_SIZE = 1200
STEPS, BATCH, LR, SEED = 600, 16, 3e-3, 0


def cache_dir() -> Path:
    return Path(os.environ.get("FINETUNE_CACHE_DIR", Path.home() / ".cache" / "llm-finetune-ja"))


def _key() -> str:
    digest = hashlib.sha256()
    for path in (CORPUS, QA, Path(__file__)):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _qa_rows() -> list[tuple[str, str]]:
    with QA.open(encoding="utf-8") as f:
        return [(row["instruction"], row["output"]) for row in csv.DictReader(f)]


def _train_tokenizer(lines: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split("\n", "isolated"), pre_tokenizers.Digits(individual_digits=True)])
    tok.decoder = decoders.Fuse()
    alphabet = sorted(set(ALPHABET) | set("".join(lines)))
    tok.train_from_iterator(lines, trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=SPECIAL, initial_alphabet=alphabet, show_progress=False))
    tok.post_processor = processors.TemplateProcessing(  # like Llama tokenizers: BOS in front
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                                        eos_token="</s>", pad_token="<pad>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


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
    tokenizer = _train_tokenizer(lines + [f"### 指示:\n{q}\n\n### 応答:\n{a}" for q, a in qa])
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
    (target / "tiny_build.json").write_text(json.dumps({"key": _key(), "steps": STEPS}))


def path() -> Path:
    """Local folder of the tiny model, built on first use (about a minute on 2 CPU cores)."""
    target = cache_dir() / f"tiny-ja-llama-{_key()}"
    if not (target / "tiny_build.json").exists():
        print(f"小さな練習用モデルを作っています(初回のみ、1 分ほど): {target}")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent))
        build(staging)
        try:
            staging.rename(target)
        except OSError:  # built meanwhile by another process
            shutil.rmtree(staging, ignore_errors=True)
    return target
