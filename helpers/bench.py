"""`make bench`: the tutorial's batching against a naive baseline, side by side in one run.

    python -m helpers.bench          # tiny model on CPU
    python -m helpers.bench --gpu    # a 1.8B-shaped Llama (random weights) under T4 limits: fp16, 15 GiB

tutorial: pad each batch only to its longest row, rows of similar length batched together
(`group_by_length`). naive: every row padded to MAX_LENGTH, random order. Both train on the same
rows for the same epochs; tokens/s counts real tokens, not padding. Each runs in its own process
so that peak memory is its own. Results also go to outputs/bench.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

import torch

from .env import REPO_ROOT

MAX_LENGTH = 256
T4_MEMORY = 15 * 2**30
LLAMA_1_8B = dict(vocab_size=99584, hidden_size=2048, intermediate_size=7168, num_hidden_layers=24,
                  num_attention_heads=16, num_key_value_heads=16, tie_word_embeddings=False)


def rows() -> list[tuple[str, str]]:
    """The sample facts plus the sample text's paragraphs as answers: lengths from ~17 to ~100 tokens."""
    from . import data
    facts = data.load_csv(REPO_ROOT / "datasets" / "sample_fictional_facts.csv")
    text = data.load_text(REPO_ROOT / "datasets" / "sample_text_ja.txt")["text"]
    return list(zip(facts["instruction"], facts["output"])) + [(f"{t[:6]}… の続きを書いてください。", t) for t in text]


def measure(mode: str, gpu: bool) -> dict:
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import (AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, LlamaConfig,
                              LlamaForCausalLM, Trainer, TrainingArguments, set_seed)

    from . import tiny
    from .env import prepare_cpu
    from .prompts import ensure_pad_token, qa_messages, training_example

    set_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny.path())
    ensure_pad_token(tokenizer)
    if gpu:
        torch.cuda.set_per_process_memory_fraction(min(1.0, T4_MEMORY / torch.cuda.get_device_properties(0).total_memory))
        config = LlamaConfig(**LLAMA_1_8B, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id)
        model = LlamaForCausalLM(config).to(torch.float16).cuda()
    else:
        prepare_cpu()
        model = AutoModelForCausalLM.from_pretrained(tiny.path())
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    examples = [training_example(tokenizer, qa_messages(q, a), MAX_LENGTH) for q, a in rows()]
    dataset = Dataset.from_list([{k: e[k] for k in ("input_ids", "attention_mask", "labels")} for e in examples])
    naive = mode == "naive"
    collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100,
                                      padding="max_length" if naive else True, max_length=MAX_LENGTH)
    args = TrainingArguments(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=8,
                             num_train_epochs=2 if gpu else 10, learning_rate=2e-4, save_strategy="no",
                             logging_strategy="no", report_to="none", seed=0, fp16=gpu, use_cpu=not gpu,
                             train_sampling_strategy="random" if naive else "group_by_length",
                             include_num_input_tokens_seen="non_padding", disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    from .training import peak_memory_mb
    return {"tokens_per_s": round(trainer.state.num_input_tokens_seen / seconds, 1),
            "peak_mem_mb": round(peak_memory_mb(), 1), "seconds": round(seconds, 2),
            "real_tokens": int(trainer.state.num_input_tokens_seen)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m helpers.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="1.8B-shaped Llama, fp16, 15 GiB cap (needs CUDA)")
    parser.add_argument("--one", choices=["tutorial", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:  # child process: one measurement as JSON on the last line
        print(json.dumps(measure(args.one, args.gpu)))
        return {}
    results = {}
    for mode in ("tutorial", "naive"):
        child = subprocess.run([sys.executable, "-m", "helpers.bench", "--one", mode] + (["--gpu"] if args.gpu else []),
                               capture_output=True, text=True, cwd=REPO_ROOT, check=True)
        results[mode] = json.loads(child.stdout.strip().splitlines()[-1])
    results["speedup"] = round(results["tutorial"]["tokens_per_s"] / results["naive"]["tokens_per_s"], 2)
    results["memory_ratio"] = round(results["naive"]["peak_mem_mb"] / results["tutorial"]["peak_mem_mb"], 2)
    results["setup"] = ("1.8B-shaped Llama, fp16, 15 GiB cap" if args.gpu else "tiny model, CPU") + f", max_length {MAX_LENGTH}"
    out = REPO_ROOT / "outputs"
    out.mkdir(exist_ok=True)
    (out / ("bench-gpu.json" if args.gpu else "bench.json")).write_text(json.dumps(results, indent=2))
    print(f"{results['setup']}")
    print(f"{'':10} {'tokens/s':>10} {'peak MiB':>10}")
    for mode in ("tutorial", "naive"):
        print(f"{mode:10} {results[mode]['tokens_per_s']:>10,.0f} {results[mode]['peak_mem_mb']:>10,.0f}")
    print(f"速さ {results['speedup']}× / メモリ {results['memory_ratio']}× 少ない (naive ÷ tutorial)")
    return results


if __name__ == "__main__":
    main()
