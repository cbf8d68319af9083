"""Small random-weight models of the model dropdown's architectures and Gemma 3, with their real tokenizers.

Each keeps what distinguishes the real model (its vocabulary and special-token ids, tied or untied
embeddings, grouped-query attention, Qwen's q/k/v biases, Gemma 3's sliding-window layers and
scaled embeddings) and shrinks only the widths and depths, so that notebooks 01→05 run on a CPU in
seconds. They exercise code paths (loading, masking, 4-bit, generation, merging, serving); the
pretrained tiny model stays the one that must honestly learn.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

import real_tokenizers
from helpers import cache
from helpers.models import LLM_JP_1_8B
from helpers.tiny import versions

SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=512)
# name: (tokenizer, config of the real model; widths and depths replaced by SMALL and the overrides)
MODELS = {
    "llm-jp-3 (Llama)": ("llm-jp-3", LLM_JP_1_8B, dict(num_key_value_heads=4)),
    "Qwen2.5 (Qwen2)": ("qwen2.5", dict(
        model_type="qwen2", vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768, rms_norm_eps=1e-6,
        rope_theta=1000000.0, tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151645),
        dict(num_key_value_heads=2)),
    "Gemma 3 (Gemma3)": ("gemma3", dict(
        model_type="gemma3_text", vocab_size=262144, hidden_size=1152, intermediate_size=6912, num_hidden_layers=26,
        num_attention_heads=4, num_key_value_heads=1, head_dim=256, sliding_window=512, query_pre_attn_scalar=256,
        rope_theta=1000000.0, tie_word_embeddings=True, bos_token_id=2, eos_token_id=[1, 106], pad_token_id=0),
        dict(num_attention_heads=2, num_key_value_heads=1, head_dim=32, query_pre_attn_scalar=32, sliding_window=16,
             layer_types=["sliding_attention", "full_attention"])),
}


def build(name: str) -> Path:
    """A folder with the random-weight model `name` and its real tokenizer (built once, cached, by the
    libraries running now: Colab's versions build their own)."""
    tokenizer_name, real, overrides = MODELS[name]
    settings = real | SMALL | overrides
    key = json.dumps(settings, sort_keys=True)

    def make(target: Path) -> None:
        torch.manual_seed(0)
        values = dict(settings)
        config = AutoConfig.for_model(values.pop("model_type"), **values)
        model = AutoModelForCausalLM.from_config(config)
        model.generation_config = GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                                                   pad_token_id=config.pad_token_id)
        model.save_pretrained(target)
        AutoTokenizer.from_pretrained(real_tokenizers.folder(tokenizer_name)).save_pretrained(target)
        (target / "settings.json").write_text(key)
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return cache.built(cache.folder() / "architectures" / f"{tokenizer_name}-transformers-{versions()['transformers']}-{digest}",
                       make, "settings.json")
