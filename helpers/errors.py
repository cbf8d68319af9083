"""Turn the errors beginners hit into Japanese messages that say what to do."""
from __future__ import annotations

import contextlib
import errno
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub.errors import HFValidationError
from safetensors import SafetensorError


class TutorialError(RuntimeError):
    """An error whose message is meant for the learner (already in Japanese)."""


@dataclass
class Problem:
    """Why one row of the learner's data can't be used: its number, the field, what is wrong, the fix."""
    row: int
    column: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"- {self.row} 行目{self.field} {self.problem} → {self.fix}"

    @property
    def field(self) -> str:
        return f" [{self.column}]" if self.column else ""


def rows_text(numbers) -> str:
    """Row numbers as short ranges: 3, 5–7, 10."""
    numbers, runs = sorted(set(numbers)), []
    for number in numbers:
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs)


def list_dropped(source: str, problems: list[Problem], numbering: str) -> None:
    """Print every row left out of `source`, each with the field, the reason and the fix; rows that share
    a reason on one line (a Hub data set may drop thousands), none left out as "…and N more"."""
    if not problems:
        return
    print(f"{source}: 次の {len({p.row for p in problems})} 行を除きました。行番号は{numbering}です:")
    groups: dict[tuple, list[int]] = {}
    for p in sorted(problems, key=lambda p: p.row):
        groups.setdefault((p.field, p.problem, p.fix), []).append(p.row)
    for (field, problem, fix), rows in groups.items():
        print(f"  - {rows_text(rows)} 行目{field} {problem} → {fix}")


def refuse(setting: str, value, reason: str, fix: str) -> TutorialError:
    """The error for a form value that cannot apply here: which setting, why, and what to set instead."""
    return TutorialError(f"{setting} = {value!r} は使えません: {reason}。{fix}。")


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
        return unwritable(exc.filename or what)
    if status in (401, 403):
        return (f"Hugging Face に拒否されました ({what})。トークンがない、無効、または書き込み (write) の権限がない、"
                "あるいはアップロード先の REPO_ID が自分のユーザー名 (か、権限のある組織) でない、のどれかです。"
                "REPO_ID を確かめ、Hugging Face の設定で write のトークンを作って Colab のシークレット HF_TOKEN に登録し直してください。"
                "利用申請 (gated) が必要なモデルやデータセットは、Hugging Face のそのページで申請が通ってから使えます。")
    if status is None and (isinstance(exc, ConnectionError) or exc.errno is None and any(
            sign in text for sign in ("offline", "connect", "timed out", "resolve", "reach"))):
        return offline(what)
    if exc.errno is not None and status is None:  # a local file problem
        return f"{what} の途中で、ファイル {exc.filename or ''} を扱えませんでした ({exc.strerror})。パスと、そのファイルがあるかを確かめてください。"
    if status is not None and status != 404:  # busy (429), down (5xx), or a request it would not take
        return (f"{what}: Hugging Face がエラーを返しました (HTTP {status})。429 や 500 番台なら混雑か一時的な障害なので、"
                "時間をおいて、もう一度実行してください。そのほかは、下の元のエラーの説明を見てください。")
    return (f"{what}: 見つかりませんでした。ID のつづり (例: llm-jp/llm-jp-3.1-1.8b-instruct4) を確認してください。"
            "gated (利用申請が必要) なモデルは Hugging Face で申請し、ログインしてから使います。")


def unwritable(place) -> str:
    """Japanese advice for a folder or file that cannot be written (read-only, or no permission)."""
    return (f"{place} を使えません (読み取り専用か、権限がありません)。"
            "書き込めるフォルダを出力フォルダにしてください (環境変数 FINETUNE_OUTPUT_DIR。Colab では Drive をマウント)。")


def offline(what: str) -> str:
    """Japanese advice for a network that was not there, or went away, while doing `what`."""
    return (f"{what}: ネットワークに接続できません (または途中で切れました)。インターネット接続を確かめて、もう一度実行してください"
            " (Hub から読み込むものなら、代わりにローカルのフォルダやファイルも指定できます)。")


def transport_errors() -> tuple[type, ...]:
    """The errors of httpx (huggingface_hub 1.x, Colab's) and httpx2 (2.x), where loaded, for a connection
    that failed, timed out or broke. Not OSErrors, so they would pass the OSError advice by."""
    return tuple(getattr(sys.modules[name], kind) for name in ("httpx", "httpx2") if name in sys.modules
                 for kind in ("TransportError", "DecodingError"))


@contextlib.contextmanager
def japanese_errors(what: str = ""):
    """Re-raise out-of-memory, file, disk and network errors met while doing `what` with Japanese advice
    (also a decorator: every step that writes or uploads wears it)."""
    try:
        yield
    except TutorialError:
        raise  # already in Japanese (a step inside a step)
    except torch.cuda.OutOfMemoryError as exc:
        raise TutorialError(OOM_ADVICE) from exc
    except OSError as exc:
        text = str(exc)
        raise TutorialError(f"{_advice(exc, what)}\n(元のエラー: {text.splitlines()[0] if text else type(exc).__name__})") from exc
    except transport_errors() as exc:
        raise TutorialError(f"{offline(what)}\n(元のエラー: {type(exc).__name__}: {exc})") from exc
    except HFValidationError as exc:  # a Hub ID with a space or a character it does not allow
        raise TutorialError(f"{what}: ID (名前) の書き方が正しくありません。「ユーザー名/名前」の形で、"
                            f"空白や使えない文字を入れずに書いてください。\n(元のエラー: {str(exc).splitlines()[0]})") from exc
    except (RuntimeError, SafetensorError) as exc:  # how torch.save and safetensors report a full disk
        if not any(sign in str(exc) for sign in ("No space left", "write failed", "os error 28")):
            raise
        raise TutorialError(f"{_disk_full(what, None)}\n(元のエラー: {str(exc).splitlines()[0]})") from exc
