"""Turn the errors beginners hit into Japanese messages that say what to do."""
from __future__ import annotations

import contextlib

import torch


class TutorialError(RuntimeError):
    """An error whose message is meant for the learner (already in Japanese)."""


OOM_ADVICE = ("GPU のメモリが足りません。次のどれかを試してください: "
              "バッチサイズを小さくして勾配累積 (gradient accumulation) を増やす / "
              "最大トークン長 (max length) を短くする / 小さいモデルを選ぶ。"
              "ランタイムを再起動してから、もう一度実行してください。")


@contextlib.contextmanager
def japanese_errors(what: str = ""):
    """Re-raise model/data loading and out-of-memory errors with Japanese advice."""
    try:
        yield
    except torch.cuda.OutOfMemoryError as exc:
        raise TutorialError(OOM_ADVICE) from exc
    except OSError as exc:
        text = str(exc)
        if "offline" in text.lower() or "connect" in text.lower() or "resolve" in text.lower():
            hint = "ネットワークに接続できません。インターネット接続を確認するか、ローカルのフォルダを指定してください。"
        else:
            hint = ("見つかりません。ID のつづり (例: llm-jp/llm-jp-3.1-1.8b-instruct4) を確認してください。"
                    "gated (利用申請が必要) なモデルは Hugging Face で申請し、ログインしてから使います。")
        raise TutorialError(f"{what} を読み込めませんでした: {hint}\n(元のエラー: {text.splitlines()[0] if text else type(exc).__name__})") from exc
