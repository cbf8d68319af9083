"""Keep the tuned model safe and shareable: sizes, a merged copy, a model card, a Hub upload."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .artefacts import save
from .env import secret
from .errors import TutorialError, japanese_errors


def merge(model, folder: Path, dtype) -> Path:
    """Fold the LoRA weights into the base model (`merge_and_unload`) and save it in `dtype`."""
    merged = model.merge_and_unload().to(dtype)
    merged.save_pretrained(folder)
    return Path(folder)


def base_license(model_id: str) -> str:
    """The licence on the base model's card (Hub or local README), or a request to check it."""
    from huggingface_hub import ModelCard
    try:
        card = ModelCard.load(str(Path(model_id) / "README.md") if Path(model_id).is_dir() else model_id)
        return card.data.license or "不明"
    except Exception:  # offline, no card: say so rather than guess
        return "不明"


def model_card(*, base_model: str, license: str, settings: dict, dataset: str, summary: pd.DataFrame | None) -> str:
    """A Hugging Face model card (YAML header + Japanese text) for the adapter."""
    scores = _markdown(summary) if summary is not None and len(summary) else "(04 を実行すると、ここに学習前後の採点が入ります)"
    rows = "\n".join(f"| {k} | {v} |" for k, v in settings.items())
    return f"""---
base_model: {base_model}
library_name: peft
license: {license if license != "不明" else "other"}
language:
- ja
tags:
- lora
- japanese
---

# {base_model} の LoRA アダプター

{f"[{base_model}](https://huggingface.co/{base_model})" if "/" in base_model and not Path(base_model).exists() else base_model} を LoRA でファインチューニングしたアダプターです。
使うときは元のモデルに重ねて読み込みます (`PeftModel.from_pretrained(元のモデル, このリポジトリ)`)。

- 元のモデル: `{base_model}` (ライセンス: {license}。このアダプターの利用も元のモデルのライセンスに従ってください)
- 学習データ: {dataset}

## 学習の設定

| 項目 | 値 |
|---|---|
{rows}

## 学習前と学習後の採点

{scores}
"""


def _markdown(table: pd.DataFrame) -> str:
    table = table.reset_index()
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)])


def token() -> str:
    """A Hugging Face token from Colab secrets (HF_TOKEN), the environment, or a saved login; never printed."""
    from huggingface_hub import get_token
    found = secret("HF_TOKEN") or get_token()
    if not found:
        raise TutorialError("Hugging Face のトークンが見つかりません。Colab なら左の鍵のアイコン (シークレット) に HF_TOKEN を"
                            "登録してノートブックからのアクセスを許可するか、`huggingface_hub.notebook_login()` でログインしてください。"
                            "トークンは書き込み (write) 権限のあるものを https://huggingface.co/settings/tokens で作ります。")
    return found


def push(folder: Path, repo_id: str, card: str, *, private: bool = True, hf_token: str | None = None) -> str:
    """Upload `folder` (with the card as README.md) to a model repo, private by default; the commit URL."""
    from huggingface_hub import HfApi
    save(Path(folder) / "README.md", card)
    with japanese_errors(f"{repo_id} へのアップロード"):  # no network, a refused token: what to do, in Japanese
        api = HfApi(token=hf_token or token())
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                                   commit_message="Upload LoRA adapter from the llm-finetune-ja notebooks")
    return str(getattr(commit, "commit_url", commit))
