"""Will it fit? A training-memory estimate from the model's config alone (no weights downloaded),
and the peak that training really reached.

weights + LoRA adapter + its gradients + optimizer state + activations (+ logits), compared with
the GPU's free memory, with advice when it will not fit: the change that saves the most first.
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
# Bytes autograd keeps per decoder layer and token, (· hidden, · intermediate), for a Llama with LoRA on every
# Linear and no LoRA dropout, counted with saved-tensor hooks on CPU (tests/test_memory.py; bf16 autocast has
# a T4's fp16 byte sizes). 4-bit: peft's `prepare_model_for_kbit_training` casts all that is not 4-bit to fp32
# (embeddings, norms, output layer) and bitsandbytes returns its input's dtype, so the residual stream and the
# MLP stay fp32; only the matrix products are 16-bit (autocast). fp32: a CPU, or a GPU after fp16 overflowed.
ACTIVATIONS = {"16-bit": (28, 8), "4-bit": (28, 14), "fp32": (32, 16)}
# LoRA dropout adds a mask for each LoRA input (q, k, v, o, gate, up: hidden; down: intermediate), of the fp32
# input peft casts to: a bool on CUDA, the fp32 noise on a CPU. In fp32 the dropped inputs of q, k, v, o, gate and
# up are also new tensors, where without dropout LoRA keeps tensors that are kept anyway (16·hidden).
MASK_BYTES = {"cuda": 1, "cpu": 4}


@dataclass
class Shape:
    params: int         # all parameters
    quantized: int      # the Linears' weights but the output head's: what 4-bit loading quantizes
    lora_params: int    # LoRA A+B for every Linear but the output head, at rank 1
    layers: int
    hidden: int
    intermediate: int   # the MLP's width
    vocab: int


def shape(config) -> Shape:
    """Count parameters and Linear shapes on the meta device (no memory, no download)."""
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    head = model.get_output_embeddings()
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not head]
    params = sum(p.numel() for p in model.parameters())
    return Shape(params, sum(m.weight.numel() for m in linears), sum(m.in_features + m.out_features for m in linears),
                 config.num_hidden_layers, config.hidden_size,
                 getattr(config, "intermediate_size", None) or 4 * config.hidden_size, config.vocab_size)


def estimate(s: Shape, *, lora_r: int, batch_size: int, max_length: int, four_bit: bool, weight_bytes: int = 2,
             gradient_checkpointing: bool = False, eight_bit_optimizer: bool = False, lora_dropout: float = 0.05,
             device: str = "cuda") -> dict:
    """Bytes per part of LoRA training memory (`weight_bytes`: the compute dtype's; ±25% of the real peak)."""
    tokens = batch_size * max_length
    lora = s.lora_params * lora_r
    compute = "fp32" if weight_bytes == 4 else "4-bit" if four_bit else "16-bit"
    per_hidden, per_intermediate = ACTIVATIONS[compute]
    if lora_dropout > 0:
        mask = MASK_BYTES.get(device, MASK_BYTES["cpu"])
        per_hidden += 6 * mask + 16 * (compute == "fp32")
        per_intermediate += mask
    layer = tokens * (per_hidden * s.hidden + per_intermediate * s.intermediate)
    logits = tokens * s.vocab * (12 + 2 * (weight_bytes == 2))  # fp32 logits, log-softmax, gradient (+16-bit logits)
    # With checkpointing only each layer's input stays (fp32 in 4-bit). The backward pass recomputes one layer at a
    # time after the logits' memory is freed: that layer adds only what it is larger than them.
    activations = (s.layers * tokens * s.hidden * (2 if compute == "16-bit" else 4) + max(0, layer - logits)
                   if gradient_checkpointing else s.layers * layer)
    weights = s.params * weight_bytes
    if four_bit:  # NF4 + double-quant constants; the rest in fp32, and autocast's 16-bit copy of the output layer
        weights = s.quantized * 0.5 * 1.03 + (s.params - s.quantized) * 4 + 2 * s.vocab * s.hidden * (weight_bytes == 2)
    return {
        "weights": weights,
        "adapter": lora * 4,                                                  # fp32
        "gradients": lora * 4,
        "optimizer": lora * (2 if eight_bit_optimizer else 8),                # Adam m and v
        "activations": activations,
        "logits": logits,
        "cuda_context": CUDA_CONTEXT,
    }


PARTS = {"weights": "重み", "adapter": "LoRA アダプター", "gradients": "勾配", "optimizer": "オプティマイザーの状態",
         "activations": "途中の計算結果 (活性化)", "logits": "出力 (logits)", "cuda_context": "CUDA の作業領域"}


def table(parts: dict) -> pd.DataFrame:
    """The estimate as a table in GiB, with Japanese names and the total."""
    frame = pd.DataFrame({"GiB": {PARTS.get(k, k): v / GiB for k, v in parts.items()}}).round(2)
    frame.loc["合計"] = frame["GiB"].sum().round(2)
    return frame


def changes(plan: dict) -> dict:
    """What the advice may suggest (Japanese) → the settings it changes, in the order to try when they save alike."""
    four_bit, batch, length = plan["four_bit"], plan["batch_size"], plan["max_length"]
    found = {("USE_4BIT をオフ (このモデルでは、fp32 になる埋め込み・出力層と活性化が、4 ビットで減る重みより大きい)" if four_bit else
              "USE_4BIT をオン (QLoRA: 層の重みが約 1/4 に。埋め込みと出力層は fp32 に、活性化も増えます)"):
             {"four_bit": not four_bit, "eight_bit_optimizer": not four_bit}}  # 03: paged 8-bit AdamW with 4-bit
    if not plan.get("gradient_checkpointing"):
        found["GRADIENT_CHECKPOINTING をオン (活性化がほぼ層の入力だけになる代わりに 2〜3 割遅くなる)"] = {
            "gradient_checkpointing": True}
    if batch > 1:
        found[f"BATCH_SIZE を {batch // 2} にして GRAD_ACCUM を 2 倍に (1 回の更新に使う行数は同じ)"] = {
            "batch_size": batch // 2}
    found[f"MAX_LENGTH を短く (今 {length}。減る量は {length // 2} にしたとき。02 のトークン数の分布を見て決める)"] = {
        "max_length": max(1, length // 2)}
    return found


def advice(s: Shape, free_bytes: int | None, **plan) -> str:
    """A Japanese verdict for `estimate(s, **plan)`: fits or not, and the changes that save the most first."""
    total = sum(estimate(s, **plan).values())
    if free_bytes is None:
        return f"推定 {total / GiB:.1f} GiB (GPU がないので比べられません。T4 の空きは約 14.5 GiB です)。"
    if total <= 0.9 * free_bytes:
        return f"推定 {total / GiB:.1f} GiB / 空き {free_bytes / GiB:.1f} GiB: 収まりそうです。"
    saved = {tip: total - sum(estimate(s, **(plan | change)).values()) for tip, change in changes(plan).items()}
    tips = sorted((tip for tip in saved if saved[tip] > 0.01 * GiB), key=lambda tip: -saved[tip])
    skipped = [tip.split(" ")[0] for tip in saved if tip not in tips]
    return (f"推定 {total / GiB:.1f} GiB / 空き {free_bytes / GiB:.1f} GiB: 足りない見込みです。"
            "減る量の多い順に試してください (減る量は、今の設定から 1 つだけ変えたとき):\n"
            + "\n".join(f"  {i}. {tip}: 約 {saved[tip] / GiB:.1f} GiB 減" for i, tip in enumerate(tips, 1))
            + (f"\n  ({'、'.join(skipped)} は、このモデルと設定ではメモリが減らないので挙げていません)" if skipped else ""))


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
