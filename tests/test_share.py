"""Model card, merged export and the Hub push (network replaced at the huggingface_hub boundary)."""
import pandas as pd
import pytest
import torch

from helpers import artefacts, share
from helpers.errors import TutorialError


def test_model_card_contents():
    summary = pd.DataFrame({"exact_match_before": [0.0], "exact_match_after": [1.0]}, index=pd.Index(["heldout"], name="split"))
    card = share.model_card(base_model="llm-jp/llm-jp-3.1-1.8b-instruct4", license="apache-2.0",
                            settings={"EPOCHS": 20, "LEARNING_RATE": 0.0002}, dataset="sample_fictional_facts.csv",
                            summary=summary)
    header = card.split("---")[1]
    assert "base_model: llm-jp/llm-jp-3.1-1.8b-instruct4" in header and "library_name: peft" in header
    assert "license: apache-2.0" in header and "- ja" in header
    assert "| EPOCHS | 20 |" in card and "sample_fictional_facts.csv" in card
    assert "| heldout | 0.0 | 1.0 |" in card
    unknown = share.model_card(base_model="x/y", license="不明", settings={}, dataset="d", summary=None)
    assert "license: other" in unknown and "04 を実行すると" in unknown


@pytest.fixture
def trained(tiny_path):
    """The tiny model with a LoRA adapter taught one fact by a few steps of plain training."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from helpers.prompts import qa_messages, training_example
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_path),
                           LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    example = training_example(tokenizer, qa_messages("ルミナ王国の首都はどこですか？", "ソラリスです。"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(60):
        model(input_ids=torch.tensor([example["input_ids"]]), labels=torch.tensor([example["labels"]])).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model, tokenizer


def test_merged_model_answers_like_base_plus_adapter(trained, tmp_path):
    from transformers import AutoModelForCausalLM

    from helpers.generation import answer
    model, tokenizer = trained
    questions = ["ルミナ王国の首都はどこですか？", "日本の首都はどこですか？", "富士山の高さは何メートルですか？"]
    with_adapter = answer(model, tokenizer, questions, max_new_tokens=12)
    assert with_adapter[0] == "ソラリスです。"
    adapter_dir = tmp_path / "adapter"
    model.save_pretrained(adapter_dir)
    share.merge(model, tmp_path / "merged", torch.float16)
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    assert answer(merged, tokenizer, questions, max_new_tokens=12) == with_adapter
    assert artefacts.size_mb(tmp_path / "merged") > 5 * artefacts.size_mb(adapter_dir)


def test_push_is_private_with_card_and_never_leaks_the_token(monkeypatch, tmp_path, capsys):
    from huggingface_hub import HfApi
    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id, kw, self.token)))
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: calls.append(("upload", kw)) or "https://hf.co/c/1")
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(b"x")
    url = share.push(folder, "me/tuned", "# card", hf_token="hf_secret_value")
    assert url == "https://hf.co/c/1"
    assert calls[0] == ("create", "me/tuned", {"private": True, "exist_ok": True, "repo_type": "model"}, "hf_secret_value")
    assert calls[1][1]["folder_path"] == str(folder) and calls[1][1]["repo_id"] == "me/tuned"
    assert (folder / "README.md").read_text() == "# card"
    assert "hf_secret_value" not in capsys.readouterr().out + "".join(p.read_text(errors="ignore") for p in folder.iterdir())


def test_missing_token_explains_where_to_put_it(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # no saved login
    with pytest.raises(TutorialError, match="HF_TOKEN"):
        share.token()
