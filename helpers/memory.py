"""Will it fit? A training-memory estimate from the model's config alone (no weights downloaded),
and the peak that training really reached.

weights + LoRA adapter + its gradients + optimizer state + activations (+ logits), compared with
the GPU's free memory, with advice when it will not fit.
"""
from __future__ import annotations

import re
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoModelForCausalLM

GiB = 2**30
CUDA_CONTEXT = 0.5 * GiB  # CUDA/cuBLAS workspace that every process pays


@dataclass
class Shape:
    params: int         # all parameters
    lora_params: int    # LoRA A+B for every Linear but the output head, at rank 1
    layers: int
    hidden: int
    vocab: int


def shape(config) -> Shape:
    """Count parameters and Linear shapes on the meta device (no memory, no download)."""
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    head = model.get_output_embeddings()
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not head]
    params = sum(p.numel() for p in model.parameters())
    return Shape(params, sum(m.in_features + m.out_features for m in linears),
                 config.num_hidden_layers, config.hidden_size, config.vocab_size)


def estimate(s: Shape, *, lora_r: int, batch_size: int, max_length: int, four_bit: bool,
             weight_bytes: int = 2, gradient_checkpointing: bool = False, eight_bit_optimizer: bool = False) -> dict:
    """Bytes per part of LoRA training memory (an estimate: real use varies by ±20%)."""
    tokens = batch_size * max_length
    lora = s.lora_params * lora_r
    # Per layer and token, autograd keeps about 41·h bytes in 16-bit (Korthikanti et al. (2022) give 34·h for
    # GPT; a Llama's SwiGLU and rotary keep more: 82·h in fp32 measured on CPU, tests/test_packing.py). With
    # checkpointing only each layer's input stays, plus one layer's worth while it is recomputed.
    scale = weight_bytes / 2  # activations are in the compute dtype: fp32 on a CPU doubles them
    per_layer = 41 * s.hidden * tokens * scale
    activations = (s.layers * 2 * s.hidden * tokens * scale + per_layer) if gradient_checkpointing else s.layers * per_layer
    return {
        "weights": s.params * (0.5 * 1.03 if four_bit else weight_bytes),  # NF4 + double-quant constants
        "adapter": lora * 4,                                                  # fp32
        "gradients": lora * 4,
        "optimizer": lora * (2 if eight_bit_optimizer else 8),                # Adam m and v
        "activations": activations,
        "logits": tokens * s.vocab * (12 + 2 * (weight_bytes == 2)),  # fp32 logits, log-softmax, gradient (+16-bit logits)
        "cuda_context": CUDA_CONTEXT,
    }


PARTS = {"weights": "重み", "adapter": "LoRA アダプター", "gradients": "勾配", "optimizer": "オプティマイザーの状態",
         "activations": "途中の計算結果 (活性化)", "logits": "出力 (logits)", "cuda_context": "CUDA の作業領域"}


def table(parts: dict) -> pd.DataFrame:
    """The estimate as a table in GiB, with Japanese names and the total."""
    frame = pd.DataFrame({"GiB": {PARTS.get(k, k): v / GiB for k, v in parts.items()}}).round(2)
    frame.loc["合計"] = frame["GiB"].sum().round(2)
    return frame


def advice(parts: dict, free_bytes: int | None, *, four_bit: bool, gradient_checkpointing: bool,
           batch_size: int, max_length: int) -> str:
    """A Japanese verdict: fits or not, and what to change first."""
    total = sum(parts.values())
    if free_bytes is None:
        return f"推定 {total / GiB:.1f} GiB (GPU がないので比べられません。T4 の空きは約 14.5 GiB です)。"
    if total <= 0.9 * free_bytes:
        return f"推定 {total / GiB:.1f} GiB / 空き {free_bytes / GiB:.1f} GiB: 収まりそうです。"
    tips = []
    if not four_bit:
        tips.append("USE_4BIT をオン (QLoRA: 重みが約 1/4 に)")
    if not gradient_checkpointing:
        tips.append("GRADIENT_CHECKPOINTING をオン (活性化のメモリが大きく減る代わりに 2〜3 割遅くなる)")
    if batch_size > 1:
        tips.append(f"BATCH_SIZE を {max(1, batch_size // 2)} にして GRAD_ACCUM を 2 倍に (1 回の更新に使う行数は同じ)")
    tips.append(f"MAX_LENGTH を短く (今 {max_length}; 02 のトークン数の分布を見て決める)")
    return (f"推定 {total / GiB:.1f} GiB / 空き {free_bytes / GiB:.1f} GiB: 足りない見込みです。次の順に試してください:\n"
            + "\n".join(f"  {i}. {tip}" for i, tip in enumerate(tips, 1)))


def measured_peak_mb() -> float:
    """Peak GPU memory allocated by torch, or this process's peak resident memory on CPU (Linux: VmHWM,
    which starts afresh in a new program; `ru_maxrss` would start from the parent's peak)."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    status = Path("/proc/self/status")
    if status.exists():
        return int(re.search(r"VmHWM:\s+(\d+) kB", status.read_text()).group(1)) / 2**10
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10
