"""Turn the errors beginners hit into Japanese messages that say what to do."""
from __future__ import annotations

import contextlib
import errno
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError


class TutorialError(RuntimeError):
    """An error whose message is meant for the learner (already in Japanese)."""


OOM_ADVICE = ("GPU のメモリが足りません。次のどれかを試してください (03 の学習なら、メモリの見積もりのセルが、このモデルで減る量の多い順に表示しています): "
              "GRADIENT_CHECKPOINTING をオンにする / バッチサイズを小さくして勾配累積 (gradient accumulation) を増やす / "
              "最大トークン長 (max length) を短くする / 小さいモデルを選ぶ。"
              "ランタイムを再起動してから、もう一度実行してください。")


def _disk_full(what: str, filename: str | None) -> str:
    free = ""
    if filename:  # the disk being written to (without a name, any figure could be another disk's)
        place = Path(filename).resolve()
        while not place.exists():
            place = place.parent
        free = f"、その場所の空き: {shutil.disk_usage(place).free / 2**30:.1f} GiB"
    return (f"{what} の途中で、ファイルを書けなくなりました (書いていたもの: {filename or '不明'}{free})。"
            "ディスクの空きがないときは、出力フォルダの古い checkpoints/ や merged/ を消すか、空きの多い場所を出力フォルダにしてください。"
            "Colab で Drive に書いていたなら、Drive の空き容量と、Drive の接続が切れていないかも確かめてください。"
            "Drive で消したファイルはゴミ箱に入り、空にするまで容量を使います (drive.google.com の「ゴミ箱」→「ゴミ箱を空にする」)。"
            "そのあと、もう一度実行してください。")


def _advice(exc: OSError, what: str) -> str:
    """Japanese advice for a file, disk or network error met while doing `what`."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    text = str(exc).lower()
    if exc.errno == errno.ENOSPC:
        return _disk_full(what, exc.filename)
    if exc.errno == errno.ENOTCONN:  # a Drive mount that went away
        return (f"{what} の途中で、{exc.filename or 'フォルダ'} との接続が切れました (Colab では Google Drive)。"
                "ランタイムを再起動し、セットアップのセルから実行し直して Drive をマウントし直してください。")
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return (f"{exc.filename or what} を使えません (読み取り専用か、権限がありません)。"
                "書き込めるフォルダを出力フォルダにしてください (環境変数 FINETUNE_OUTPUT_DIR。Colab では Drive をマウント)。")
    if status in (401, 403):
        return (f"Hugging Face に拒否されました ({what})。トークンがない、無効、または書き込み (write) の権限がない、"
                "あるいはアップロード先の REPO_ID が自分のユーザー名 (か、権限のある組織) でない、のどれかです。"
                "REPO_ID を確かめ、Hugging Face の設定で write のトークンを作って Colab のシークレット HF_TOKEN に登録し直してください。"
                "利用申請 (gated) が必要なモデルは、申請が通ってから使えます。")
    if status is None and exc.errno is None and ("offline" in text or "connect" in text or "timed out" in text
                                                 or "resolve" in text):
        return f"{what}: ネットワークに接続できません。インターネット接続を確認するか、ローカルのフォルダを指定してください。"
    if exc.errno is not None and status is None:  # a local file problem
        return f"{what} の途中で、ファイル {exc.filename or ''} を扱えませんでした ({exc.strerror})。パスと、そのファイルがあるかを確かめてください。"
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
    except (RuntimeError, SafetensorError) as exc:  # how torch.save and safetensors report a full disk
        if not any(sign in str(exc) for sign in ("No space left", "write failed", "os error 28")):
            raise
        raise TutorialError(f"{_disk_full(what, None)}\n(元のエラー: {str(exc).splitlines()[0]})") from exc
