"""Where we run: Colab or local, which device, which precision, where outputs go."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from . import REPO_ROOT, TINY
from .errors import TutorialError, japanese_errors, unwritable

DRIVE_ROOT = Path("/content/drive/MyDrive")
DRIVE_FOLDER = "llm-finetune-ja"
UPLOADS = Path("/content")  # where Colab's file pane puts uploaded files
# Where the results go, when not outputs/ or Drive (TUTORIAL_<NAME> is kept for the form values)
OUTPUT_VARIABLE = "FINETUNE_OUTPUT_DIR"
# A precision chosen by hand, on any device: fp16 is what a T4 computes in, so a CPU can try a model the T4 way
PRECISION_VARIABLE = "FINETUNE_PRECISION"
PRECISIONS = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
T4_MENU = "メニューの「ランタイム」→「ランタイムのタイプを変更」→「T4 GPU」を選んで保存し、最初のセルから実行し直してください"
DRIVE_HINT = ("Colab ではノートブックごとに別のランタイムになり、前のノートブックのファイルは残りません。"
              "前のノートブック ({notebook}) を、セットアップのセルの USE_GOOGLE_DRIVE をオンにしてもう一度実行すると、"
              "結果が Drive を通ってここに届きます。")
ON_DRIVE_HINT = ("{notebook} を USE_GOOGLE_DRIVE をオンにして最後まで実行しましたか? "
                 "同じ Google アカウントの Drive (マイドライブ/{folder}/) に結果があるはずです。")


def in_colab() -> bool:
    return "google.colab" in sys.modules


@dataclass
class Precision:
    device: str        # "cuda" / "cpu"
    dtype: torch.dtype  # dtype to load the base weights in
    fp16: bool         # Trainer(fp16=...)
    bf16: bool         # Trainer(bf16=...)
    reason: str        # why, in Japanese


def choose_precision(model: str = "", *, capability: tuple[int, int] | None = None) -> Precision:
    """bf16 only on compute capability >= 8.0, fp16 AMP below (T4 = 7.5), fp32 on CPU.

    `torch.cuda.is_bf16_supported()` is not trusted: it can say True on a T4 (emulation).
    In Colab without a GPU, a real `model` stops here with the menu path to a T4.
    `FINETUNE_PRECISION` (fp16 / bf16 / fp32) overrides the choice on any device.
    """
    if in_colab() and model.strip() not in ("", TINY) and not torch.cuda.is_available():
        raise TutorialError(f"GPU のないランタイムです。{model} を CPU で動かすと何時間もかかります。{T4_MENU}。")
    forced = os.environ.get(PRECISION_VARIABLE, "").strip().lower()
    if forced:
        if forced not in PRECISIONS:
            raise TutorialError(f"環境変数 {PRECISION_VARIABLE}={forced!r} は {' / '.join(PRECISIONS)} のどれかにしてください。")
        device = "cuda" if torch.cuda.is_available() else "cpu"
        return Precision(device, PRECISIONS[forced], forced == "fp16", forced == "bf16",
                         f"環境変数 {PRECISION_VARIABLE}={forced} なので {forced} で動かします ({device})。")
    if capability is None and torch.cuda.is_available():
        capability = torch.cuda.get_device_capability()
    if capability is None:
        return Precision("cpu", torch.float32, False, False,
                         "GPU がないので CPU の float32 で動かします。練習用の tiny なら数分、本物のモデルには T4 などの GPU が要ります"
                         + (f" ({T4_MENU})。" if in_colab() else "。"))
    cc = f"{capability[0]}.{capability[1]}"
    if capability >= (8, 0):
        return Precision("cuda", torch.bfloat16, False, True, f"compute capability {cc} ≥ 8.0 なので bf16 を使います。")
    return Precision("cuda", torch.float16, True, False,
                     f"compute capability {cc} < 8.0 (T4 など) は bf16 が使えないので fp16 の混合精度で学習します。")


def describe() -> dict:
    """Facts about this runtime for the environment-check table."""
    info = {"実行環境": "Google Colab" if in_colab() else "ローカル (Jupyter / CLI)",
            "Python": sys.version.split()[0], "PyTorch": torch.__version__}
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        info |= {"GPU": torch.cuda.get_device_name(),
                 "compute capability": "%d.%d" % torch.cuda.get_device_capability(),
                 "GPU メモリ (空き / 全体)": f"{free / 2**30:.1f} / {total / 2**30:.1f} GiB"}
    else:
        info["GPU"] = "なし (CPU で実行)"
    info["精度"] = choose_precision().reason
    return info


def output_dir() -> Path:
    """`FINETUNE_OUTPUT_DIR`, else Google Drive when mounted (survives a disconnect), else `outputs/`; made, and
    refused now if it cannot be written (rather than when the first checkpoint is)."""
    path = _output_path()
    with japanese_errors(f"出力フォルダ {path} の準備"):
        path.mkdir(parents=True, exist_ok=True)
    if not os.access(path, os.W_OK):
        raise TutorialError(unwritable(path))
    return path


def _output_path() -> Path:
    """Where `output_dir` puts the results (nothing made or checked: `locate` only looks there)."""
    if "TUTORIAL_OUTPUT_DIR" in os.environ:  # the old name: an error, not silently ignored
        raise TutorialError(f"環境変数 TUTORIAL_OUTPUT_DIR は {OUTPUT_VARIABLE} に名前が変わりました "
                            "(TUTORIAL_ で始まる名前はフォームの値の上書きだけに使います)。名前を変えて設定し直してください。")
    if os.environ.get(OUTPUT_VARIABLE):
        return Path(os.environ[OUTPUT_VARIABLE])
    return DRIVE_ROOT / DRIVE_FOLDER if DRIVE_ROOT.is_dir() else REPO_ROOT / "outputs"


def on_drive(path: Path) -> bool:
    return DRIVE_ROOT.resolve() in Path(path).resolve().parents


def require(path: Path, notebook: str) -> Path:
    """Stop with a Japanese message naming the notebook to run first when `path` is missing
    (in Colab also how results reach this runtime through Drive)."""
    if not Path(path).exists():
        hint = (ON_DRIVE_HINT if on_drive(path) else DRIVE_HINT) if in_colab() else ""
        raise TutorialError(f"{path} が見つかりません。先に {notebook} を最後まで実行してください"
                            f" (出力フォルダ: {Path(path).parent})。" + hint.format(notebook=notebook, folder=DRIVE_FOLDER))
    return Path(path)


def check_drive(out: Path, step: str) -> None:
    """Before a long step in Colab: stop unless its results go to Drive, where the next notebook can read them."""
    if in_colab() and not on_drive(out):
        raise TutorialError(f"出力フォルダ {out} は Google Drive にありません。このまま{step}しても、結果はこのランタイムと一緒に消え、"
                            "次のノートブック (別のランタイム) からは見えません。"
                            "セットアップのセルの USE_GOOGLE_DRIVE をオンにして、このノートブックを最初から実行し直してください。")


def locate(path: str | Path) -> Path:
    """A file the learner named: as given, else under the repository, Colab's upload folder or the output folder.

    Missing: a Japanese message listing every place looked at."""
    path = Path(path).expanduser()
    places = [path] if path.is_absolute() else [
        path, REPO_ROOT / path, *([UPLOADS / path] if in_colab() else []), _output_path() / path]
    for place in places:
        if place.is_file():
            return place
    raise TutorialError(f"ファイル {path} が見つかりません。探した場所:\n" + "\n".join(f"- {p.resolve()}" for p in places)
                        + ("\nColab では、左の「ファイル」(フォルダのアイコン) にアップロードしたファイルは /content/ に入ります。"
                           "そのファイル名か、フルパス (右クリック →「パスをコピー」) を書いてください。" if in_colab()
                           else "\nファイル名のつづりと、ノートブックのフォルダ (notebooks/) からの相対パスを確かめてください。"))


def secret(name: str) -> str:
    """A secret from Colab's secrets (the key icon, where this notebook may read it), else the environment; "" if unset."""
    try:
        from google.colab import userdata  # type: ignore[import-not-found]
        found = userdata.get(name)
    except Exception:  # not in Colab, not set, or this notebook not given access
        found = None
    return (found or os.environ.get(name, "")).strip()


def prepare_cpu() -> None:
    """On CPU, flush denormals: tiny-model training gets several times faster."""
    if not torch.cuda.is_available():
        torch.set_flush_denormal(True)


def world_size() -> int:
    """Processes in this run (`torchrun` / `accelerate launch` set WORLD_SIZE; 1 otherwise)."""
    return int(os.environ.get("WORLD_SIZE", 1))


def device_map(device: str):
    """Where `from_pretrained` puts the model: this process's GPU (one per process under DDP) or CPU."""
    return {"": int(os.environ.get("LOCAL_RANK", 0))} if device == "cuda" else device
