"""Notebooks 01→05 on small random-weight models shaped like the default model (llm-jp-3, Llama, untied
embeddings), Qwen2.5 (Qwen2) and Gemma 3, each with its real tokenizer and chat template (see
architectures.py): loading, masking, 4-bit, generation, merging with tied embeddings, serving.
Few epochs, a few conversations: code paths, not learning."""
import json

import pandas as pd
import pytest

import architectures
from helpers import notebooks

RUNS = {  # architecture: extra settings (one run takes the 4-bit path)
    "llm-jp-3 (Llama)": {},
    "Qwen2.5 (Qwen2)": {"USE_4BIT": "true"},
    "Gemma 3 (Gemma3)": {},
}


@pytest.mark.parametrize("name", RUNS)
def test_notebooks_run_on_the_architecture(name, monkeypatch, tmp_path):
    folder = architectures.build(name)
    settings = {"MODEL": str(folder), "SOURCE": "conversations", "ROW_LIMIT": "10", "EPOCHS": "2", "MAX_NEW_TOKENS": "8",
                "SAVE_MERGED": "true", "MESSAGE": "こんにちは"} | RUNS[name]
    for key, value in settings.items():
        monkeypatch.setenv(f"TUTORIAL_{key}", value)
    notebooks.run(tmp_path)
    trained = json.loads((tmp_path / "train_settings.json").read_text(encoding="utf-8"))
    assert trained["MODEL"] == str(folder) and trained["USE_4BIT"] == (settings.get("USE_4BIT") == "true")
    table = pd.read_csv(tmp_path / "comparison.csv", keep_default_na=False)
    assert set(table["split"]) == {"train", "heldout", "control"} and len(table) == 10 + 5
    assert (tmp_path / "merged" / "config.json").exists() and (tmp_path / "adapter" / "adapter_config.json").exists()
    served = (tmp_path / "executed" / "05_share_and_serve.ipynb").read_text(encoding="utf-8")
    assert '\\"object\\": \\"chat.completion\\"' in served
