"""Padding-free packing is correct with the notebooks' attention (SDPA), and 03's memory estimate is
near what training really takes."""
import ast

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import architectures
from helpers import NOTEBOOK_DIR
from helpers.prompts import IGNORE_INDEX, ensure_pad_token, qa_messages, training_example
from tooling import bench

pytestmark = pytest.mark.colab  # run under Colab's versions too (make test)

ROWS = [("日本の首都はどこですか？", "東京です。"), ("富士山の高さは？", "3776メートルです。日本でいちばん高い山です。"),
        ("空は何色ですか？", "青です。"), ("一週間は何日ですか？", "七日です。月曜日から日曜日まであります。")]


def per_token_losses(model, batch):
    """The loss of every trained token (labels not -100), in order, and the batch's mean loss."""
    out = model(**batch)
    logits, labels = out.logits[:, :-1].float(), batch["labels"][:, 1:]
    losses = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                               ignore_index=IGNORE_INDEX, reduction="none")
    return losses[labels.reshape(-1) != IGNORE_INDEX], out.loss


@pytest.mark.parametrize("name", ["tiny", *architectures.MODELS])
def test_packed_rows_train_on_the_same_per_token_loss_as_padded_rows(name, tiny_path):
    folder = tiny_path if name == "tiny" else architectures.build(name)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ensure_pad_token(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="sdpa")
    model.train()  # dropout is 0 in these configs: train mode, as under Trainer, and deterministic
    examples = [{k: e[k] for k in ("input_ids", "attention_mask", "labels")}
                for e in (training_example(tokenizer, qa_messages(q, a), 128) for q, a in ROWS)]
    padded = bench.collator("longest", tokenizer)([dict(e) for e in examples])
    packed = bench.collator("packed", tokenizer)([dict(e) for e in examples])
    assert packed["input_ids"].shape[0] == 1 and (padded["input_ids"] == tokenizer.pad_token_id).any()

    model.config.use_cache = False  # as 03 and the bench train
    with torch.no_grad():
        expected, expected_mean = per_token_losses(model, padded)
        got, got_mean = per_token_losses(model, packed)
    assert len(got) == len(expected) == sum(sum(label != IGNORE_INDEX for label in e["labels"]) for e in examples)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got_mean, expected_mean, rtol=1e-5, atol=1e-5)

    # The control: with a cache (transformers' default for these models), the packed rows are not told
    # apart and attend to each other; this is why 03 turns the cache off while training.
    model.config.use_cache = True
    with torch.no_grad():
        mixed, _ = per_token_losses(model, packed)
    assert (mixed - expected).abs().max() > 1e-2


def test_notebook_03_batches_the_way_the_bench_measures_it():
    """Read from 03's code as Python (its calls and their arguments), not from its lines' spelling."""
    tree = ast.parse((NOTEBOOK_DIR / "03_lora_finetune.py").read_text(encoding="utf-8"))
    calls = {ast.unparse(node.func): node for node in ast.walk(tree) if isinstance(node, ast.Call)}
    padding, order = bench.TUTORIAL
    assert ("DataCollatorWithFlattening" in calls) == (padding == "packed")
    blocks = {k.arg: ast.unparse(k.value) for k in calls["DataCollatorForSeq2Seq"].keywords}  # text blocks: no padding
    assert blocks == {"label_pad_token_id": "IGNORE_INDEX"}
    strategy = {k.arg: ast.literal_eval(k.value) for k in calls["TrainingArguments"].keywords
                if k.arg == "train_sampling_strategy"}.get("train_sampling_strategy", "random")
    assert (strategy == "group_by_length") == (order == "group_by_length")
    assert any(isinstance(node, ast.Assign) and ast.unparse(node) == "model.config.use_cache = False"
               for node in ast.walk(tree))


@pytest.mark.slow
@pytest.mark.parametrize("batch, max_length, options", [
    (4, 256, {}),                                                             # fp32, as on a CPU
    (2, 384, {"gradient_checkpointing": True}),
    (4, 256, {"bf16": True}),                                                 # bf16 autocast: a T4's fp16 sizes
    (4, 256, {"bf16": True, "four_bit": True}),                               # QLoRA as 03 prepares it
    (2, 384, {"bf16": True, "four_bit": True, "gradient_checkpointing": True}),
], ids=["fp32", "fp32-checkpointing", "bf16", "4-bit", "4-bit-checkpointing"])
@pytest.mark.newest_pins
def test_the_memory_estimate_is_within_a_quarter_of_the_measured_peak(batch, max_length, options):
    """03's estimate against the peak of live memory of the bench's training (03's LoRA dropout 0.05), on a
    mid-size random-weight Llama (60M parameters, vocabulary 32000) on CPU, every row padded to `max_length` as
    the estimate assumes: in fp32; in bf16 weights and autocast, whose byte sizes are a T4's fp16; and in 4-bit
    NF4 (bitsandbytes runs on CPU) computing in bf16 after `prepare_model_for_kbit_training`. The tiny model is
    left out: its few MiB of weights and activations are smaller than what a process's memory varies by anyway.
    On a GPU, `make bench-gpu` prints the same comparison."""
    measured = bench.run_one("pad_to_max", live_memory=True, shape="mid", batch=batch, max_length=max_length, steps=2,
                             **options)
    assert 0.75 <= measured["peak_mem_mb"] / measured["estimate_mb"] <= 1.25, measured
