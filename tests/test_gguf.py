"""GGUF export (05), checked by llama.cpp itself (`make test-gguf`: llama-cpp-python built from its
pinned source distribution, the one the converters come from).

Two models, each given a LoRA trained here on answers it could not guess, so that greedy answers are
distinct and end at the template's turn end: the tiny model (its SentencePiece `tokenizer.model` is
what the converter reads for a Llama) and a Qwen2.5-shaped one with Qwen2.5's real tokenizer (a BPE the
converter knows by its hash). llm-jp-3's Unigram `tokenizer.json` is refused (test_architectures).
"""
import re

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

import architectures
import real_tokenizers
from helpers import gguf_export, prompts, share, tiny

TRAINED = [("日本の首都はどこですか？", "東京です。"), ("富士山の高さは？", "3776メートルです。"),
           ("猫の鳴き声は？", "にゃーです。"), ("好きな色は？", "青と緑です。")]
UNSEEN = "今日は何曜日ですか？"  # not trained: compared too


def go(template: str, system: str, prompt: str, response: str) -> str:
    """Ollama's rendering of the constructs `ollama_template` writes (if/else on .System, three variables)."""
    choice = re.fullmatch(r"\{\{ if \.System \}\}(.*)\{\{ else \}\}(.*)\{\{ end \}\}(.*)", template, re.S)
    if choice:
        template = (choice[1] if system else choice[2]) + choice[3]
    return template.replace("{{ .System }}", system).replace("{{ .Prompt }}", prompt).replace("{{ .Response }}", response)


@pytest.mark.parametrize("name", ["tiny", "llm-jp-3", *real_tokenizers.PACKAGES])
def test_the_modelfile_template_writes_what_training_wrote(name, tiny_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_path if name == "tiny" else real_tokenizers.folder(name))
    if name == "gemma2":
        tokenizer.chat_template = real_tokenizers.GEMMA2_TEMPLATE
    template = gguf_export.ollama_template(tokenizer)
    bos = tokenizer.bos_token if prompts.adds_bos(tokenizer) else ""  # llama.cpp adds it, as the tokenizer does
    for system in ("", "あなたは猫です。"):
        if system and name == "gemma2":
            continue  # its template refuses a system message
        messages = ([{"role": "system", "content": system}] if system else []) + prompts.qa_messages("質問？", "答え。")
        trained = prompts.format_chat(tokenizer, messages, add_generation_prompt=False)
        assert bos + go(template, system, "質問？", "答え。") == trained
    stops = [line for line in gguf_export.modelfile(tokenizer, "m.gguf").splitlines() if line.startswith("PARAMETER stop")]
    assert stops == [f'PARAMETER stop "{tokenizer.convert_ids_to_tokens(i)}"' for i in prompts.stop_ids(tokenizer)]


@pytest.fixture(scope="module", params=["tiny", "Qwen2.5 (Qwen2)"])
def tuned(request, tmp_path_factory):
    """Base, adapter and merged folders of a model with a LoRA trained on TRAINED."""
    base = tiny.path() if request.param == "tiny" else architectures.build(request.param)
    tokenizer = AutoTokenizer.from_pretrained(base)
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
                           LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
    examples = [prompts.training_example(tokenizer, prompts.qa_messages(q, a)) for q, a in TRAINED]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(150):
        for e in examples:
            loss = model(input_ids=torch.tensor([e["input_ids"]]), labels=torch.tensor([e["labels"]])).loss
            loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    folder = tmp_path_factory.mktemp("tuned")
    model.save_pretrained(folder / "adapter")
    share.merge(model, folder / "merged", torch.float16)
    tokenizer.save_pretrained(folder / "merged")
    return base, folder / "adapter", folder / "merged", tokenizer


def hf_answers(model, tokenizer) -> dict[str, tuple[str, list[int]]]:
    answers = {}
    for question in [q for q, _ in TRAINED] + [UNSEEN]:
        ids = prompts.prompt_ids(tokenizer, prompts.qa_messages(question, "")[:1])
        new = model.generate(torch.tensor([ids]), max_new_tokens=16, do_sample=False,
                             eos_token_id=prompts.stop_ids(tokenizer))[0][len(ids):].tolist()
        answers[question] = (prompts.answer_text(tokenizer, new), ids)
    return answers


@pytest.mark.llama_cpp
def test_llama_cpp_answers_as_transformers_does(tuned, tmp_path):
    llama_cpp = pytest.importorskip("llama_cpp", reason="make test-gguf installs llama-cpp-python")
    base, adapter, merged, tokenizer = tuned
    expected = hf_answers(AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32), tokenizer)
    with_adapter = hf_answers(PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
                                                        adapter), tokenizer)
    assert [expected[q][0] for q, _ in TRAINED] == [a for _, a in TRAINED]  # the LoRA learned distinct answers
    assert with_adapter == expected

    files = {kind: gguf_export.model_to_gguf(merged, tmp_path / f"model-{kind}.gguf", kind) for kind in gguf_export.TYPES}
    runs = {kind: dict(model_path=str(path)) for kind, path in files.items()}
    runs["base f16 + LoRA"] = dict(model_path=str(gguf_export.model_to_gguf(base, tmp_path / "base.gguf", "f16")),
                                   lora_path=str(gguf_export.adapter_to_gguf(adapter, str(base), tmp_path / "lora.gguf")))
    template = gguf_export.ollama_template(tokenizer)
    for run, options in runs.items():
        llm = llama_cpp.Llama(n_ctx=256, seed=0, verbose=False, **options)
        for question, (answer, ids) in expected.items():
            text = go(template, "", question, "").removesuffix(prompts.answer_closing(tokenizer))
            assert llm.tokenize(text.encode(), add_bos=True, special=True) == ids, (run, question)
            got = llm.create_completion(ids, max_tokens=16, temperature=0.0, top_k=1)["choices"][0]
            assert (got["text"].strip(), run) == (answer, run)
            if question != UNSEEN:
                assert got["finish_reason"] == "stop", (run, question)  # llama.cpp stopped at <|im_end|> itself
