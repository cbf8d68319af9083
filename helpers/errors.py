"""Turn the errors beginners hit into Japanese messages that say what to do."""
from __future__ import annotations

import contextlib
import errno
import shutil
from pathlib import Path

import torch


class TutorialError(RuntimeError):
    """An error whose message is meant for the learner (already in Japanese)."""


OOM_ADVICE = ("GPU のメモリが足りません。次のどれかを試してください: "
              "バッチサイズを小さくして勾配累積 (gradient accumulation) を増やす / "
              "最大トークン長 (max length) を短くする / 小さいモデルを選ぶ。"
              "ランタイムを再起動してから、もう一度実行してください。")


def _disk_full(what: str, filename: str | None) -> str:
    place = Path(filename or ".").resolve()
    while not place.exists():
        place = place.parent
    return (f"{what} の途中で、ディスクの空きがなくなりました (書いていたもの: {filename or '不明'}、"
            f"空き: {shutil.disk_usage(place).free / 2**30:.1f} GiB)。出力フォルダの古い checkpoints/ や merged/ を消すか、"
            "空きの多い場所を出力フォルダにしてから、もう一度実行してください。")


def _advice(exc: OSError, what: str) -> str:
    """Japanese advice for a file, disk or network error met while doing `what`."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    text = str(exc).lower()
    if exc.errno == errno.ENOSPC:
        return _disk_full(what, exc.filename)
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return (f"{exc.filename or what} に書き込めません (読み取り専用か、書き込む権限がありません)。"
                "書き込めるフォルダを出力フォルダにしてください (環境変数 TUTORIAL_OUTPUT_DIR。Colab では Drive をマウント)。")
    if status in (401, 403):
        return ("Hugging Face に拒否されました (トークンがない、無効、または書き込み (write) の権限がない)。Hugging Face の設定で"
                " write のトークンを作り、Colab のシークレット HF_TOKEN に登録し直してください。"
                "利用申請 (gated) が必要なモデルは、申請が通ってから使えます。")
    if "offline" in text or "connect" in text or "resolve" in text or "timed out" in text:
        return f"{what}: ネットワークに接続できません。インターネット接続を確認するか、ローカルのフォルダを指定してください。"
    return (f"{what} を読み込めませんでした: 見つかりません。ID のつづり (例: llm-jp/llm-jp-3.1-1.8b-instruct4) を確認してください。"
            "gated (利用申請が必要) なモデルは Hugging Face で申請し、ログインしてから使います。")


@contextlib.contextmanager
def japanese_errors(what: str = ""):
    """Re-raise out-of-memory, file, disk and network errors met while doing `what` with Japanese advice."""
    try:
        yield
    except torch.cuda.OutOfMemoryError as exc:
        raise TutorialError(OOM_ADVICE) from exc
    except OSError as exc:
        text = str(exc)
        raise TutorialError(f"{_advice(exc, what)}\n(元のエラー: {text.splitlines()[0] if text else type(exc).__name__})") from exc
    except RuntimeError as exc:  # torch.save and safetensors report a full disk as RuntimeError
        if "No space left" not in str(exc) and "write failed" not in str(exc):
            raise
        raise TutorialError(f"{_disk_full(what, None)}\n(元のエラー: {str(exc).splitlines()[0]})") from exc
