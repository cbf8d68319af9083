"""Colab as it is: the setup cell's work there (install only what Colab lacks) and the last cell's.

In Colab the setup cell installs only the requirements Colab lacks (today: bitsandbytes and the
Japanese font for plots, matplotlib-fontja) and changes nothing Colab already has; `tooling.colab_env`
checks that against Google's published list.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from . import REPO_ROOT  # the standard library alone here: `tooling.colab_env` runs before anything is installed

REQUIREMENTS = REPO_ROOT / "requirements.txt"


def name(text: str) -> str:
    """A package name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", text).lower()


def requirements(lines: list[str] | None = None) -> dict[str, str]:
    """requirements.txt (or the given requirement lines) as {name: pinned line}."""
    if lines is None:
        lines = [line.split("#")[0].strip() for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines()]
    return {name(re.split(r"[=<>!~\[;]", line)[0].strip()): line for line in lines if line}


def missing(installed: set[str]) -> list[str]:
    """The pinned requirements whose package is not installed at all (what the setup cell installs)."""
    return [line for package, line in requirements().items() if package not in installed]


def installed_here() -> set[str]:
    return {name(dist.metadata["Name"]) for dist in metadata.distributions() if dist.metadata["Name"]}


def setup(repo_dir: str, use_drive: bool) -> None:
    """What the setup cell does in Colab: install what Colab lacks, mount Drive, work from notebooks/. A missing GPU
    is said by the notebooks that need one (`env.choose_precision`), not here: 02 runs without."""
    os.chdir(Path(repo_dir) / "notebooks")
    need = missing(installed_here())
    if need:
        print(f"Colab に無いライブラリ ({', '.join(need)}) を入れています (1 分ほど)…", flush=True)
        result = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *need], capture_output=True, text=True)
        if result.returncode:
            raise SystemExit(f"{' '.join(need)} を入れられませんでした。メニューの「ランタイム」→「セッションを再起動する」のあと、"
                             f"もう一度実行してください。\n(pip の出力の最後: {result.stderr.strip()[-500:]})")
    kept = ", ".join(f"{package} {metadata.version(package)}" for package in ("torch", "transformers", "peft"))
    print(f"セットアップ完了: Colab のライブラリはそのまま使います ({kept} ほか)。追加したもの: {', '.join(need) or 'なし'}")
    if use_drive:
        from google.colab import drive
        drive.mount("/content/drive")
    else:
        print("USE_GOOGLE_DRIVE はオフです。結果はこのランタイムの中 (outputs/) に保存し、ランタイムを閉じると消えます"
              "(次のノートブックからは見えません。残すときは、閉じる前に左の「ファイル」からダウンロードします)。")

def finish() -> None:
    """The last cell in Colab: write what is still on its way to Drive (unmount) and say the runtime can go."""
    if "google.colab" not in sys.modules:
        return
    from .env import DRIVE_ROOT, DRIVE_FOLDER, output_dir
    if not DRIVE_ROOT.is_dir():
        print(f"Drive をつないでいないので、結果 ({output_dir()}) はこのランタイムの中にだけあります。ランタイムを閉じると消えます。"
              "残すなら、先に左の「ファイル」から要るものをダウンロードしてください。")
        return
    from google.colab import drive
    drive.flush_and_unmount()
    print(f"Drive への書き込みを終えて、Drive を切り離しました。結果は マイドライブ/{DRIVE_FOLDER}/ にあります。"
          "このノートブックのセルをまた実行するときは、セットアップのセルから実行し直してください (Drive をつなぎ直します)。\n"
          "このランタイムは閉じてかまいません: メニューの「ランタイム」→「ランタイムを接続解除して削除」。"
          "無料の GPU の利用時間を使わずに済みます。次のノートブックは、新しいランタイムで開きます。")

