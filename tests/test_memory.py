"""03's memory estimate: the bytes it counts are those autograd, peft and bitsandbytes really keep (counted
on CPU), and its advice puts first what saves the most for the model at hand. The estimate against measured
peaks of whole training runs is in tests/test_packing.py."""
import dataclasses
import re

import pytest
import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import AutoConfig, AutoModelForCausalLM

from helpers import env, memory, models

pytestmark = pytest.mark.unit  # offline, quick, nothing built or fetched (make test-unit)

GiB = 2**30
LLAMA_1_8B = memory.shape(AutoConfig.for_model(**models.LLM_JP_1_8B))
# A 7B Llama's shape (Llama 2): large layers, a small vocabulary
LLAMA_7B = memory.shape(AutoConfig.for_model(**models.LLM_JP_1_8B | dict(
    vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
    num_key_value_heads=32)))
BATCH, LENGTH = 4, 256  # 1024 tokens: per-token bytes, not per-batch ones (LoRA weights' 16-bit copies), dominate


def small_llama(hidden: int, intermediate: int):
    """A 2-layer Llama with a 4000-token vocabulary: tiny weights, real activations."""
    return AutoConfig.for_model(**models.LLM_JP_1_8B | dict(
        hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, vocab_size=4000))


def lora_model(config, compute: str, folder, dropout: float, gradient_checkpointing: bool = False):
    """The model as 03 trains it, on CPU: bf16 weights (a T4's fp16 sizes), fp32, or 4-bit NF4 computing in
    bf16 after peft's `prepare_model_for_kbit_training`; LoRA r 8 on every Linear."""
    torch.manual_seed(0)
    if compute == "4-bit":
        AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).save_pretrained(folder)
        model = models.load(str(folder), env.Precision("cpu", torch.bfloat16, False, True, ""), four_bit=True)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing,
                                                    gradient_checkpointing_kwargs={"use_reentrant": False})  # as 03
    else:
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32 if compute == "fp32" else torch.bfloat16,
                                                 attn_implementation="sdpa")
        if gradient_checkpointing:
            model.gradient_checkpointing_enable()
            model.enable_input_require_grads()
    model.config.use_cache = False
    return get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=dropout, target_modules="all-linear",
                                            task_type="CAUSAL_LM"))


def kept_bytes(model, autocast: bool) -> tuple[list[int], dict]:
    """Bytes autograd keeps for the backward pass during one training forward, per decoder layer, each storage
    once and parameters left out; and what it keeps outside the layers, {(dtype, shape): bytes}."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    layers, place, kept = model.base_model.model.model.layers, [None], {}
    for i, layer in enumerate(layers):
        layer.register_forward_pre_hook(lambda *_, i=i: place.__setitem__(0, i))
        layer.register_forward_hook(lambda *_: place.__setitem__(0, None))

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            kept.setdefault(storage.data_ptr(), (place[0], storage.nbytes(), tensor.dtype, tuple(tensor.shape)))
        return tensor

    model.train()
    ids = torch.randint(5, 4000, (BATCH, LENGTH))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), \
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        model(input_ids=ids, labels=ids)
    per_layer = [sum(n for where, n, *_ in kept.values() if where == i) for i in range(len(layers))]
    return per_layer, {(dtype, shape): n for where, n, dtype, shape in kept.values() if where is None}


@pytest.mark.parametrize("compute", ["16-bit", "4-bit", "fp32"])
@pytest.mark.parametrize("dropout", [0.0, 0.05])
@pytest.mark.parametrize("hidden, intermediate", [(256, 1536), (512, 1024)])
def test_activations_are_the_bytes_autograd_keeps_per_layer(compute, dropout, hidden, intermediate, tmp_path):
    """Measured: the last layer's saved tensors (the first keeps less: its input needs no gradient), in two
    widths whose MLP/hidden ratio differs (6 and 2), so both of the estimate's terms are checked. CPU masks:
    LoRA dropout's fp32 noise; CUDA's are bool (1 byte), which the estimate's `device` accounts for."""
    config = small_llama(hidden, intermediate)
    model = lora_model(config, compute, tmp_path, dropout)
    measured = kept_bytes(model, autocast=compute != "fp32")[0][-1] / (BATCH * LENGTH)
    parts = memory.estimate(memory.shape(config), lora_r=8, batch_size=BATCH, max_length=LENGTH,
                            four_bit=compute == "4-bit", weight_bytes=4 if compute == "fp32" else 2,
                            lora_dropout=dropout, device="cpu")
    estimated = parts["activations"] / (config.num_hidden_layers * BATCH * LENGTH)
    assert measured == pytest.approx(estimated, rel=0.03), (measured, estimated)


@pytest.mark.parametrize("compute, residual_bytes", [("16-bit", 2), ("4-bit", 4)])
def test_with_checkpointing_each_layer_keeps_its_input_in_the_residual_streams_dtype(compute, residual_bytes, tmp_path):
    """4-bit keeps fp32 layer inputs: peft's fp32 embeddings feed the residual stream, and bitsandbytes
    returns each Linear's output in its input's dtype."""
    config = small_llama(256, 1536)
    per_layer, _ = kept_bytes(lora_model(config, compute, tmp_path, 0.05, gradient_checkpointing=True), autocast=True)
    assert per_layer[-1] == residual_bytes * config.hidden_size * BATCH * LENGTH
    s = memory.shape(config)
    plan = dict(lora_r=8, batch_size=BATCH, max_length=LENGTH, four_bit=compute == "4-bit", device="cpu")
    parts = memory.estimate(s, **plan)
    recomputed = max(0, parts["activations"] / s.layers - parts["logits"])  # one layer, after the logits are freed
    checkpointed = memory.estimate(s, **plan, gradient_checkpointing=True)["activations"]
    assert checkpointed == s.layers * per_layer[-1] + recomputed


def test_4_bit_keeps_embeddings_and_output_layer_in_fp32_and_a_16_bit_copy_of_the_head(tmp_path):
    """After `prepare_model_for_kbit_training`, all that bitsandbytes did not quantize is fp32 (the estimate's
    `quantized` at 4 bits plus its constants, the rest at 4 bytes); autocast's bf16 copy of the fp32 output layer
    is kept for the backward pass (2·vocab·hidden bytes, counted in the estimate's weights)."""
    config = small_llama(256, 1536)
    model = lora_model(config, "4-bit", tmp_path, 0.05)
    s = memory.shape(config)
    base = model.base_model.model
    kinds = {type(p).__name__ for n, p in base.named_parameters() if "lora_" not in n and p.dtype != torch.float32}
    assert kinds == {"Params4bit"}
    assert base.get_output_embeddings().weight.dtype == base.get_input_embeddings().weight.dtype == torch.float32
    lora = sum(p.numel() * p.element_size() for n, p in base.named_parameters() if "lora_" in n)
    loaded = base.get_memory_footprint() - lora
    copy = 2 * s.vocab * s.hidden
    estimated = memory.estimate(s, lora_r=8, batch_size=1, max_length=1, four_bit=True)["weights"] - copy
    assert loaded == pytest.approx(estimated, rel=0.02)
    _, outside = kept_bytes(model, autocast=True)
    copies = [n for (dtype, _), n in outside.items() if dtype == torch.bfloat16 and n >= copy]  # (hidden, vocab)
    assert copies == [copy]


def test_estimate_arithmetic():
    s = memory.Shape(params=1000, quantized=800, lora_params=10, layers=2, hidden=4, intermediate=12, vocab=50)
    plan = dict(lora_r=8, batch_size=2, max_length=3, lora_dropout=0.0)
    parts = memory.estimate(s, four_bit=False, **plan)
    assert parts["weights"] == 2000 and parts["adapter"] == 80 * 4 and parts["optimizer"] == 80 * 8
    assert parts["activations"] == 2 * 6 * (28 * 4 + 8 * 12)  # 16-bit: 28·hidden + 8·intermediate per layer and token
    assert parts["logits"] == 6 * 50 * 14  # 16-bit logits, their fp32 copy, log-softmax and gradient
    dropout = memory.estimate(s, four_bit=False, **plan | {"lora_dropout": 0.05})
    assert dropout["activations"] - parts["activations"] == 2 * 6 * (6 * 4 + 12)  # a 1-byte mask per LoRA input
    on_cpu = memory.estimate(s, four_bit=False, device="cpu", **plan | {"lora_dropout": 0.05})
    assert on_cpu["activations"] - parts["activations"] == 2 * 6 * 4 * (6 * 4 + 12)  # the fp32 noise
    fp32 = memory.estimate(s, four_bit=False, weight_bytes=4, **plan)
    assert fp32["activations"] == 2 * 6 * (32 * 4 + 16 * 12) and fp32["logits"] == 6 * 50 * 12
    quantised = memory.estimate(s, four_bit=True, gradient_checkpointing=True, eight_bit_optimizer=True, **plan)
    assert quantised["weights"] == pytest.approx(800 * 0.515 + 200 * 4 + 2 * 50 * 4)
    assert quantised["activations"] == 2 * 6 * 4 * 4  # fp32 layer inputs; the recomputed layer < the logits
    assert quantised["optimizer"] == 80 * 2
    few_words = memory.estimate(dataclasses.replace(s, vocab=5), four_bit=True, gradient_checkpointing=True, **plan)
    assert few_words["activations"] == 2 * 6 * 4 * 4 + 6 * (28 * 4 + 14 * 12) - 6 * 5 * 14  # ... or larger


def test_shape_counts_what_4_bit_quantizes_and_the_mlp_width():
    linears = 24 * (4 * 2048 * 2048 + 3 * 2048 * 7168)  # q, k, v, o and gate, up, down: not the output layer
    assert LLAMA_1_8B.quantized == linears and LLAMA_1_8B.intermediate == 7168
    assert 0.21 < 1 - linears / LLAMA_1_8B.params < 0.23  # embeddings and the untied output layer: 22%, fp32 in 4-bit


def saved_gib(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"約 ([\d.]+) GiB 減", text)]


def test_advice_puts_first_what_saves_most_for_the_model_at_hand():
    plan = dict(lora_r=8, batch_size=4, max_length=256, four_bit=False, lora_dropout=0.05)
    # llm-jp-3 1.8B: 22% of it (100k vocabulary, untied) turns fp32 in 4-bit, and so do the activations: 4-bit saves
    # nothing, gradient checkpointing the most
    text = memory.advice(LLAMA_1_8B, 6 * GiB, **plan)
    assert "足りない" in text and "USE_4BIT をオン" not in text and "USE_4BIT は" in text
    assert text.index("GRADIENT_CHECKPOINTING") < text.index("BATCH_SIZE を 2") < text.index("MAX_LENGTH")
    assert saved_gib(text) == sorted(saved_gib(text), reverse=True) and saved_gib(text)[0] > 2.5
    # in 4-bit already, turning it off saves a little
    quantised = memory.advice(LLAMA_1_8B, 6 * GiB, **plan | {"four_bit": True, "eight_bit_optimizer": True})
    assert quantised.index("GRADIENT_CHECKPOINTING") < quantised.index("USE_4BIT をオフ")
    # a 7B Llama (32k vocabulary) on one row: 4-bit first
    big = memory.advice(LLAMA_7B, int(14.5 * GiB), **plan | {"batch_size": 1})
    assert big.index("USE_4BIT をオン") < big.index("GRADIENT_CHECKPOINTING") < big.index("MAX_LENGTH")
    assert "BATCH_SIZE" not in big and saved_gib(big) == sorted(saved_gib(big), reverse=True)


def test_advice_fits_or_has_no_gpu_to_compare_with():
    plan = dict(lora_r=8, batch_size=4, max_length=256, four_bit=False)
    assert "収まりそうです" in memory.advice(LLAMA_1_8B, int(14.5 * GiB), **plan)
    assert "GPU がない" in memory.advice(LLAMA_1_8B, None, **plan)
