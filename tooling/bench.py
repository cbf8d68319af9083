"""`make bench`: how fast notebook 03 trains, against the ways a user would otherwise batch, in one run.

    python -m tooling.bench          # the tiny model on CPU
    python -m tooling.bench --gpu    # llm-jp-3 1.8B's shape (random weights), fp16, under a T4's 15 GiB
    python -m tooling.bench --bf16   # on CPU in bf16: a T4's fp16 byte sizes (for the memory estimate)

The same rows (the fictional facts and the sample text's paragraphs: 18 to 67 tokens with the tiny
model's tokenizer, 28.5 on average), epochs, LoRA (03's defaults, dropout included) and seed for each way of batching:

    pad_to_max  every row padded to MAX_LENGTH, random order
    hf_default  Hugging Face's default, the peer: `DataCollatorForSeq2Seq` pads each batch to its longest row, random order
    tutorial    notebook 03's settings (`TUTORIAL`)
    packed      padding-free: a batch's rows joined into one row (`DataCollatorWithFlattening`), positions
                restarting at each; correct with SDPA when the model keeps no cache (tests/test_packing.py)

03 packs since it measured fastest here, so `tutorial` and `packed` are the same settings run twice:
the gap between them is the run-to-run noise.

tokens/s counts real tokens, not padding. Each runs in its own process, so its peak memory is its own
(GPU: reserved by torch; CPU: the peak resident memory of live tensors above what the process had before
the model, `run_one`), printed beside 03's estimate. Results go to bench.json in the output folder.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import (AutoConfig, AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq,
                          DataCollatorWithFlattening, Trainer, TrainingArguments, set_seed)

from helpers import REPO_ROOT, cache, data, env, memory, models, tiny
from helpers.prompts import IGNORE_INDEX, ensure_pad_token, qa_messages, training_example

# padding ("max_length", "longest" or "packed") and order of the rows
MODES = {"pad_to_max": ("max_length", "random"), "hf_default": ("longest", "random"),
         "tutorial": ("packed", "random"), "packed": ("packed", "random")}
TUTORIAL = MODES["tutorial"]  # what notebook 03 does (tests/test_packing.py checks its source)
PEER = "hf_default"
MAX_LENGTH, BATCH, LORA_R = 256, 8, 8
LORA_DROPOUT = 0.05  # 03's default
REPEATS = 3  # each mode's fastest of 3 runs is kept
# --gpu: 03's estimate against the measured peak for these (batch, MAX_LENGTH), each with and without
# 4-bit and gradient checkpointing
MEMORY_GRID = [(1, 512), (4, 256), (4, 512), (8, 512), (4, 1024)]
T4_MEMORY = 15 * 2**30
# Random-weight models of real shapes: the default model's for the GPU bench, and a mid-size Llama whose
# memory a CPU can measure in seconds (tests/test_packing.py compares it with 03's estimate).
SHAPES = {"1.8b": models.LLM_JP_1_8B,
          "mid": models.LLM_JP_1_8B | dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=8,
                                           num_attention_heads=8, num_key_value_heads=8, vocab_size=32000)}


def rows() -> list[tuple[str, str]]:
    """The sample facts plus the sample text's paragraphs as answers (mixed lengths)."""
    facts = data.load_csv(REPO_ROOT / "datasets" / "sample_fictional_facts.csv")
    text = data.load_text(REPO_ROOT / "datasets" / "sample_text_ja.txt")["text"]
    return list(zip(facts["instruction"], facts["output"])) + [(f"{t[:6]}… の続きを書いてください。", t) for t in text]


def collator(padding: str, tokenizer, max_length: int = MAX_LENGTH):
    """How a batch is made: padded to `max_length`, padded to its longest row, or packed into one row."""
    if padding == "packed":
        return DataCollatorWithFlattening(separator_id=IGNORE_INDEX)
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX, max_length=max_length,
                                  padding="max_length" if padding == "max_length" else True)


def random_model(shape: str, dtype) -> str:
    """A folder with a random-weight model of `shape` and the tiny model's tokenizer (built once), so that it
    loads like a real one (`models.load` checks an fp16 model with one forward)."""
    def build(folder: Path) -> None:
        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(AutoConfig.for_model(**SHAPES[shape]), dtype=dtype).save_pretrained(folder)
        AutoTokenizer.from_pretrained(tiny.path()).save_pretrained(folder)
    target = cache.folder() / "bench" / f"{shape}-{str(dtype).removeprefix('torch.')}"
    return str(cache.built(target, build, "tokenizer_config.json"))


def measure(mode: str, shape: str = "tiny", batch: int = BATCH, max_length: int = MAX_LENGTH, epochs: int = 20,
            steps: int = -1, four_bit: bool = False, gradient_checkpointing: bool = False, gpu: bool = False,
            bf16: bool = False) -> dict:
    """Train LoRA on `rows()` batched the `mode` way (`epochs`, or only `steps` updates when given), on
    the GPU as on a T4 (fp16, 15 GiB) or on the CPU (fp32, or `bf16` weights and autocast), as 03 does
    (4-bit: `prepare_model_for_kbit_training`); real tokens/s, peak memory and 03's estimate."""
    padding, order = MODES[mode]
    set_seed(0)
    if gpu:
        torch.cuda.set_per_process_memory_fraction(min(1.0, T4_MEMORY / torch.cuda.get_device_properties(0).total_memory))
    precision = (env.choose_precision(shape, capability=(7, 5)) if gpu else
                 env.Precision("cpu", torch.bfloat16, False, True, "CPU bf16") if bf16 else
                 env.Precision("cpu", torch.float32, False, False, "CPU"))
    tokenizer = AutoTokenizer.from_pretrained(tiny.path())
    ensure_pad_token(tokenizer)
    examples = [training_example(tokenizer, qa_messages(q, a), max_length) for q, a in rows()]
    dataset = Dataset.from_list([{k: e[k] for k in ("input_ids", "attention_mask", "labels")} for e in examples])
    before = memory.measured_peak_mb()
    path = models.resolve(shape) if shape == "tiny" else random_model(shape, precision.dtype)
    model = models.load(path, precision, four_bit=four_bit)
    if four_bit:  # as in 03: all that is not 4-bit in fp32
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing,
                                                    gradient_checkpointing_kwargs={"use_reentrant": False})  # as 03
    model.config.use_cache = False  # as in 03: no cache while training (packed rows need it so)
    model = get_peft_model(model, LoraConfig(r=LORA_R, lora_alpha=2 * LORA_R, lora_dropout=LORA_DROPOUT,
                                             target_modules="all-linear", task_type="CAUSAL_LM"))
    args = TrainingArguments(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=batch, num_train_epochs=epochs,
                             max_steps=steps, include_num_input_tokens_seen="non_padding",
                             learning_rate=2e-4, save_strategy="no", logging_strategy="no", report_to="none", seed=0,
                             fp16=precision.fp16, bf16=precision.bf16, use_cpu=not gpu, train_sampling_strategy=order,
                             gradient_checkpointing=gradient_checkpointing, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                      data_collator=collator(padding, tokenizer, max_length))
    env.prepare_cpu()
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    real_tokens = trainer.state.num_input_tokens_seen  # padding left out (packed rows: tokens that are not the pad id)
    peak = torch.cuda.max_memory_reserved() / 2**20 if gpu else memory.measured_peak_mb() - before
    return {"tokens_per_s": round(real_tokens / seconds, 1), "peak_mem_mb": round(peak, 1), "real_tokens": real_tokens,
            "estimate_mb": estimate_mb(model.config, batch, max_length, four_bit, gradient_checkpointing,
                                       torch.finfo(precision.dtype).bits // 8, precision.device),
            "seconds": round(seconds, 2)}


def estimate_mb(config, batch: int, max_length: int, four_bit: bool, gradient_checkpointing: bool,
                weight_bytes: int = 2, device: str = "cuda") -> float:
    """03's estimate (MiB) without its CUDA context, which neither measure counts."""
    parts = memory.estimate(memory.shape(config), lora_r=LORA_R, batch_size=batch, max_length=max_length,
                            four_bit=four_bit, weight_bytes=weight_bytes, gradient_checkpointing=gradient_checkpointing,
                            lora_dropout=LORA_DROPOUT, device=device)
    return round((sum(parts.values()) - parts["cuda_context"]) / 2**20, 1)


def run_one(mode: str, live_memory: bool = False, **options) -> dict:
    """`measure` in a fresh process (its own peak memory). On a CPU, glibc keeps freed blocks for reuse,
    which inflates the resident peak; `live_memory` maps every large tensor on its own, so that the peak
    is that of live memory, as torch's is on a GPU (it slows training: speed is measured without it)."""
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in options.items()]
    child = subprocess.run([sys.executable, "-m", "tooling.bench", "--one", mode, *flags], capture_output=True, text=True,
                           cwd=REPO_ROOT, env=os.environ | ({"MALLOC_MMAP_THRESHOLD_": "65536"} if live_memory else {}))
    if child.returncode:
        raise RuntimeError(f"{mode}: {child.stderr[-3000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def memory_point(batch: int, max_length: int, four_bit: bool, gradient_checkpointing: bool) -> dict:
    """On the GPU: the peak of two updates of rows padded to `max_length`, beside 03's estimate
    (without the estimate's CUDA context); over the 15 GiB cap, the peak is None."""
    point = {"batch": batch, "max_length": max_length, "four_bit": four_bit, "gradient_checkpointing": gradient_checkpointing}
    try:
        measured = run_one("pad_to_max", shape="1.8b", steps=2, gpu=True, **point)
    except RuntimeError as error:
        if "OutOfMemoryError" not in str(error):
            raise
        measured = {"peak_mem_mb": None, "estimate_mb": estimate_mb(AutoConfig.for_model(**SHAPES["1.8b"]), batch, max_length,
                                                                   four_bit, gradient_checkpointing)}
    return point | {"peak_mem_mb": measured["peak_mem_mb"], "estimate_mb": measured["estimate_mb"]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m tooling.bench", description=__doc__.splitlines()[0])
    switch = dict(nargs="?", const=True, default=False, type=lambda v: v.lower() == "true")  # --x or --x=True
    parser.add_argument("--gpu", **switch, help="llm-jp-3 1.8B の形 (重みは乱数)、fp16、15 GiB まで (CUDA が必要)")
    parser.add_argument("--four-bit", **switch, help="4 ビット (QLoRA) で読み込む")
    parser.add_argument("--gradient-checkpointing", **switch)
    parser.add_argument("--bf16", **switch, help="CPU で bf16 (重みと autocast。T4 の fp16 と同じバイト数)")
    parser.add_argument("--one", choices=MODES, help=argparse.SUPPRESS)  # a child process: one measure as JSON
    parser.add_argument("--shape", default="tiny", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=BATCH, help=argparse.SUPPRESS)
    parser.add_argument("--max-length", type=int, default=MAX_LENGTH, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=20, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=-1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    options = {"four_bit": args.four_bit, "gradient_checkpointing": args.gradient_checkpointing} | (
        {"bf16": True} if args.bf16 and not args.gpu else {})
    if args.one:
        print(json.dumps(measure(args.one, args.shape, args.batch, args.max_length, args.epochs, args.steps,
                                 gpu=args.gpu, **options)))
        return {}
    if args.gpu and not torch.cuda.is_available():
        parser.error("--gpu には CUDA の GPU が必要です")
    run = {"shape": "1.8b", "epochs": 2, "gpu": True} if args.gpu else {}
    tokenizer = AutoTokenizer.from_pretrained(tiny.path())
    lengths = [len(training_example(tokenizer, qa_messages(q, a), MAX_LENGTH)["input_ids"]) for q, a in rows()]
    results = {}
    for _ in range(REPEATS):  # in rounds, so that a slower moment of the machine falls on every mode alike
        for mode in MODES:
            result = run_one(mode, **run, **options)
            if result["tokens_per_s"] > results.get(mode, {}).get("tokens_per_s", 0):
                results[mode] = result
    for mode in MODES if not args.gpu else ():  # the peak of live memory, from one epoch of the same rows
        results[mode]["peak_mem_mb"] = run_one(mode, live_memory=True, epochs=1, **options)["peak_mem_mb"]
    results["setup"] = {"model": "llm-jp-3 1.8B shape, random weights, fp16, 15 GiB cap" if args.gpu else
                        f"tiny (CPU, {'bf16' if args.bf16 else 'fp32'})",
                        "device": torch.cuda.get_device_name() if args.gpu else "CPU", "rows": len(lengths),
                        "lengths": f"{min(lengths)}-{max(lengths)} tokens (mean {sum(lengths) / len(lengths):.1f}), "
                                   f"MAX_LENGTH {MAX_LENGTH}", "batch": BATCH, "lora_r": LORA_R} | options
    results["tutorial_over_hf_default"] = round(results["tutorial"]["tokens_per_s"] / results[PEER]["tokens_per_s"], 2)
    if args.gpu:
        results["memory"] = [memory_point(batch, length, four_bit, checkpointing) for batch, length in MEMORY_GRID
                             for four_bit in (False, True) for checkpointing in (False, True)]
    path = env.output_dir() / ("bench-gpu.json" if args.gpu else "bench.json")
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    print(json.dumps(results["setup"], ensure_ascii=False))
    print(f"{'':12} {'tokens/s':>10} {'peak MiB':>10} {'estimate MiB':>13}")
    for mode in MODES:
        row = results[mode]
        print(f"{mode:12} {row['tokens_per_s']:>10,.0f} {row['peak_mem_mb']:>10,.0f} {row['estimate_mb']:>13,.0f}")
    print(f"03 の設定は Hugging Face の既定 (hf_default) の {results['tutorial_over_hf_default']} 倍の速さ ({path})")
    for point in results.get("memory", []):
        print(f"batch {point['batch']} × {point['max_length']}, 4-bit {point['four_bit']}, checkpointing "
              f"{point['gradient_checkpointing']}: measured {point['peak_mem_mb'] or '—'} MiB / estimate {point['estimate_mb']} MiB")
    return results


if __name__ == "__main__":
    main()
