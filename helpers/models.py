"""Which model to load, and how: a Hub id, a local folder, or `tiny` (built offline from this repo)."""
from __future__ import annotations

from pathlib import Path

from . import TINY

# Models a free Colab T4 can fine-tune (see README); the notebook field also accepts any id.
CHOICES = [
    "llm-jp/llm-jp-3.1-1.8b-instruct4",
    "sbintuitions/sarashina2.2-1b-instruct-v0.1",
    "Qwen/Qwen2.5-1.5B-Instruct",
    "Qwen/Qwen2.5-0.5B-Instruct",
    TINY,
]
# The default model's shape (llm-jp-3 1.8B, a Llama), for memory estimates and benchmarks without its weights.
LLM_JP_1_8B = dict(model_type="llama", vocab_size=99584, hidden_size=2048, intermediate_size=7168, num_hidden_layers=24,
                   num_attention_heads=16, num_key_value_heads=16, max_position_embeddings=4096, rms_norm_eps=1e-5,
                   rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=4)


def resolve(model: str) -> str:
    """A path or Hub id `from_pretrained` accepts; `tiny` builds (once) the offline model."""
    model = model.strip()
    if model == TINY:
        from . import tiny  # here: it imports torch, which `helpers.data check` does without
        return str(tiny.path())
    return str(Path(model).expanduser()) if Path(model).expanduser().is_dir() else model


def load(model: str, precision, *, four_bit: bool = False, device_map=None, adapter: str | Path | None = None,
         revision: str | None = None):
    """The model as 01 and 03 load it (`AutoModelForCausalLM.from_pretrained`): `precision`'s dtype,
    PyTorch's SDPA attention, 4-bit NF4 with double quantization when `four_bit` (QLoRA), on
    `device_map` (the precision's device by default); with a LoRA `adapter` (at `revision`) on top.
    In fp16 it is checked first (`fp16_checked`)."""
    from peft import PeftModel  # here: importing peft takes seconds, and 01/02 and `helpers.data check` need none of it
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                      bnb_4bit_compute_dtype=precision.dtype) if four_bit else None
    loaded = AutoModelForCausalLM.from_pretrained(resolve(model), dtype=precision.dtype, attn_implementation="sdpa",
                                                  quantization_config=quantization, device_map=device_map or precision.device)
    if adapter:
        loaded = PeftModel.from_pretrained(loaded, adapter, revision=revision)
    return fp16_checked(loaded, model, precision, four_bit=four_bit, device_map=device_map, adapter=adapter,
                        revision=revision)[0]


def fp16_checked(loaded, model: str, precision, *, tokenizer=None, row: dict | None = None,
                 needed_bytes: int | None = None, **options):
    """(`loaded`, `precision`), or, when `loaded` overflows fp16 on a real sample (a training `row`, or a
    question), the same `model` loaded again in fp32 (`load` with `options`) and that precision (see `overflow`)."""
    if not precision.fp16:
        return loaded, precision
    from transformers import AutoTokenizer

    from .overflow import safe_precision

    tokenizer = tokenizer or AutoTokenizer.from_pretrained(resolve(model))
    safe = safe_precision(loaded, tokenizer, precision, row, needed_bytes)
    if safe.dtype == precision.dtype:
        return loaded, precision
    del loaded
    return load(model, safe, **options), safe
