"""Where we run: Colab or local, which device, which precision, where outputs go."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
DRIVE_ROOT = Path("/content/drive/MyDrive")
DRIVE_FOLDER = "llm-finetune-ja"


def in_colab() -> bool:
    return "google.colab" in sys.modules


@dataclass
class Precision:
    device: str        # "cuda" / "cpu"
    dtype: torch.dtype  # dtype to load the base weights in
    fp16: bool         # Trainer(fp16=...)
    bf16: bool         # Trainer(bf16=...)
    reason: str        # why, in Japanese


def choose_precision(capability: tuple[int, int] | None = None) -> Precision:
    """bf16 only on compute capability >= 8.0, fp16 AMP below (T4 = 7.5), fp32 on CPU.

    `torch.cuda.is_bf16_supported()` is not trusted: it can say True on a T4 (emulation).
    """
    if capability is None and torch.cuda.is_available():
        capability = torch.cuda.get_device_capability()
    if capability is None:
        return Precision("cpu", torch.float32, False, False, "GPU がないので CPU の float32 で動かします(遅いですが動きます)。")
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
    """`TUTORIAL_OUTPUT_DIR`, else Google Drive when mounted (survives a disconnect), else `outputs/`."""
    if os.environ.get("TUTORIAL_OUTPUT_DIR"):
        path = Path(os.environ["TUTORIAL_OUTPUT_DIR"])
    elif DRIVE_ROOT.is_dir():
        path = DRIVE_ROOT / DRIVE_FOLDER
    else:
        path = REPO_ROOT / "outputs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def require(path: Path, notebook: str) -> Path:
    """Stop with a Japanese message naming the notebook to run first when `path` is missing."""
    if not Path(path).exists():
        raise FileNotFoundError(
            f"{path} が見つかりません。先に {notebook} を最後まで実行してください"
            f"(出力フォルダ: {Path(path).parent})。")
    return Path(path)


def prepare_cpu() -> None:
    """On CPU, flush denormals: tiny-model training gets several times faster."""
    if not torch.cuda.is_available():
        torch.set_flush_denormal(True)
