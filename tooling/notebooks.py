"""Keep the notebooks in step with their `.py` sources and run them headless.

    python -m tooling.notebooks sync   # write the shared cells and the repository URL into the sources, regenerate .ipynb
    python -m tooling.notebooks run [OUT] [--only NN]   # execute every notebook (or notebook NN) on the tiny model
                                                       # (00 writes to OUT/quickstart)

The `.py` files (jupytext percent format) are the source; the `.ipynb` files are generated
from them without outputs. What every notebook repeats for its reader is written into the sources
from one place: the setup cell from `notebooks/setup_cell.py`, the MODEL dropdown from
`models.CHOICES`, the repository URL from `pyproject.toml`.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
import tomllib
from pathlib import Path

import pandas as pd

from helpers import NOTEBOOK_DIR, REPO_ROOT
from helpers.artefacts import COMPARISON, QUICKSTART
from helpers.env import OUTPUT_VARIABLE
from helpers.models import CHOICES
from helpers.scores import style_ending
from helpers.settings import FROM_01, FROM_02, PREFIX
from helpers.tables import headline, style_scores
# What `make demo` and the test suite set: the offline tiny model, with settings it learns with, and
# 05's GGUF export (a few MB on it).
TINY_ENV = {"TUTORIAL_MODEL": "tiny", "TUTORIAL_EPOCHS": "40", "TUTORIAL_LEARNING_RATE": "1e-3",
            "TUTORIAL_EXPORT_GGUF": "true"}
# A real model (`--model`): the notebooks' own defaults, computed in fp16 as on a T4 (a model that overflows
# fp16 goes on in fp32, as it would there), 05's merge and GGUF export on.
REAL_ENV = {"FINETUNE_PRECISION": "fp16", "TUTORIAL_SAVE_MERGED": "true", "TUTORIAL_EXPORT_GGUF": "true"}
COLAB_T4 = {"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []}}
COLAB_CPU = {"colab": {"provenance": []}}
NO_GPU = {"02_build_dataset"}  # reads a tokenizer only: opens on Colab's CPU runtime, keeping the free GPU time
_GITHUB = re.compile(r"(https://github\.com/|colab\.research\.google\.com/github/)([\w.-]+/[\w.-]+)")
_OURS = re.compile(r'colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/main/notebooks/|REPO_URL = "https://github\.com/([\w.-]+/[\w.-]+)"')
SETUP_CELL = NOTEBOOK_DIR / "setup_cell.py"
_SETUP = re.compile(r"^# @title 0\. セットアップ.*?^import helpers\n", re.S | re.M)
FINISH_CELL = NOTEBOOK_DIR / "finish_cell.py"  # every notebook's last cell
_FINISH = re.compile(r"^# @title おわり.*?^colab\.finish\(\)\n", re.S | re.M)
_PARAM = re.compile(r"^(\w+) = (.+?)  # @param", re.M)
_MODEL = re.compile(r'^(MODEL = "[^"]*"  # @param )(\[[^\]]*\])', re.M)
_DRIVE = re.compile(r"^USE_GOOGLE_DRIVE = (True|False)", re.M)  # each notebook keeps its own default (00: off)
_DRIVE_NOTE = re.compile(r"^# @markdown \*\*USE_GOOGLE_DRIVE\*\*: .*$", re.M)
# The note of a notebook that is one runtime of its own (00): Drive off, and no consent screen to explain
DRIVE_OFF_NOTE = ("# @markdown **USE_GOOGLE_DRIVE**: このノートブックは 1 つのランタイムで終わるので、Google Drive は使いません (オフのまま)。"
                  "結果はランタイムの中の outputs/quickstart/ に保存し、ランタイムを閉じると消えます。"
                  "開いたときの「このノートブックは Google が作成したものではありません」という警告は、GitHub のノートブックではいつも出ます。「このまま実行」を押します。")


def sources() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))


def repo_url() -> str:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return project["urls"]["Repository"].rstrip("/")


def with_url(text: str, url: str) -> str:
    """Point this repository's GitHub / Colab links in `text` at `url` (https://github.com/OWNER/NAME): those
    of the repository the text's badges or `REPO_URL` name; links to other projects stay."""
    ours = {badge or setup for badge, setup in _OURS.findall(text)}
    slug = url.removeprefix("https://github.com/")
    return _GITHUB.sub(lambda m: m.group(1) + slug if m.group(2) in ours else m.group(0), text)


def form_values(source: Path) -> dict:
    """The default of every form field (`NAME = value  # @param ...`) in notebook `source`, as Python values."""
    return {match.group(1): ast.literal_eval(match.group(2)) for match in _PARAM.finditer(source.read_text(encoding="utf-8"))}


def setup_cell(drive: bool = True) -> str:
    """The setup cell, with Drive on (01–05), or off with its own note (00)."""
    setup = SETUP_CELL.read_text(encoding="utf-8")
    return setup if drive else _DRIVE_NOTE.sub(lambda _: DRIVE_OFF_NOTE, setup.replace("USE_GOOGLE_DRIVE = True", "USE_GOOGLE_DRIVE = False"))


def generated(text: str) -> str:
    """A notebook source with its setup cell, last cell and MODEL dropdown written from their one place
    (the setup cell keeps the notebook's own default for USE_GOOGLE_DRIVE)."""
    drive = _DRIVE.search(text)
    text = _SETUP.sub(lambda _: setup_cell(drive is None or drive.group(1) == "True"), text, count=1)
    text = _FINISH.sub(lambda _: FINISH_CELL.read_text(encoding="utf-8"), text, count=1)

    def dropdown(match):
        same = [o for o in json.loads(match.group(2)) if o in (FROM_01, FROM_02)]  # "02 と同じ" and the like stay first
        return match.group(1) + json.dumps(same + CHOICES, ensure_ascii=False)
    return _MODEL.sub(dropdown, text)


def render(source: Path):
    """The notebook a `.py` source stands for, with the current repository URL."""
    import jupytext  # dev tool (pyproject's [dev]): not needed by the notebooks themselves
    notebook = jupytext.reads(with_url(source.read_text(encoding="utf-8"), repo_url()), fmt="py:percent")
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number:02d}"  # stable ids: regenerating gives no diff
    notebook.metadata |= COLAB_CPU if source.stem in NO_GPU else COLAB_T4  # the badge opens a runtime with a T4 chosen
    return notebook


def synced() -> list[Path]:
    """The files `sync` writes the repository URL into."""
    return [path for path in [REPO_ROOT / "README.md", REPO_ROOT / "CONTRIBUTING.md", SETUP_CELL, *sources()] if path.exists()]


def sync() -> None:
    """Write the shared cells and the URL into the `.py` sources (and the URL into README and CONTRIBUTING),
    then regenerate every `.ipynb`."""
    import jupytext  # dev tool (pyproject's [dev]): not needed by the notebooks themselves
    for path in synced():
        text = with_url(path.read_text(encoding="utf-8"), repo_url())
        path.write_text(generated(text) if path in sources() else text, encoding="utf-8")
    for source in sources():
        jupytext.write(render(source), source.with_suffix(".ipynb"))
        print(f"{source.with_suffix('.ipynb').name} を更新しました")


def execute(source: Path, out: Path, settings: dict | None = None, model: str = "") -> None:
    """Run notebook `source` on the tiny model, or on `model` (a folder) with the notebooks' own defaults,
    form values `settings` on top, in a kernel of its own environment, writing to `out`; the executed
    copy goes to `out/executed`, a failed one too (its last output shows where it stopped). A cell may
    take 15 minutes on the tiny model, an hour on a real one. This process's environment is not changed."""
    import nbformat  # dev tools (pyproject's [dev]): not needed by the notebooks themselves
    from nbclient import NotebookClient

    env = ((REAL_ENV | {PREFIX + "MODEL": model} if model else TINY_ENV) | dict(os.environ)
           | {PREFIX + name: str(value) for name, value in (settings or {}).items()}
           | {OUTPUT_VARIABLE: str(Path(out).resolve())})
    (Path(out) / "executed").mkdir(parents=True, exist_ok=True)
    notebook = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    try:
        # "immediate": the kernel is killed after its last cell, not left a second or two to tear down torch
        NotebookClient(notebook, timeout=3600 if model else 900, kernel_name="python3", shutdown_kernel="immediate",
                       resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute(env=env)
    finally:
        nbformat.write(notebook, Path(out) / "executed" / f"{source.stem}.ipynb")


def selected(only: str = "", upto: str = "", since: str = "") -> list[Path]:
    """The notebook sources whose number starts with `only`, or lies between `since` and `upto`."""
    return [s for s in sources() if s.stem.startswith(only) and (since or "00") <= s.stem[:2] <= (upto or "99")]


def run(out: Path, only: str = "", upto: str = "", since: str = "", settings: dict | None = None,
        model: str = "") -> None:
    """Execute the notebooks in order (`selected` ones; see `execute`), printing each before/after
    table's headline (00's, in `out/quickstart`, and 04's)."""
    chosen = selected(only, upto, since)
    for source in chosen:
        print(f"実行中: {source.stem}", flush=True)
        execute(source, out, settings, model)
        if source.stem[:2] in ("00", "04"):
            summarise(Path(out) / QUICKSTART if source.stem.startswith("00") else out)


def summarise(out: Path) -> None:
    """Print the headline of the before/after table in `out` (and the style's, for a style the model lacked)."""
    if not (Path(out) / COMPARISON).exists():
        return
    table = pd.read_csv(Path(out) / COMPARISON, keep_default_na=False)
    print(f"\n学習前と学習後の比較 ({Path(out) / COMPARISON}):")
    print(headline(table))
    ending = style_ending(list(table[table["split"] == "train"]["expected"]))
    style = style_scores(table, ending).loc["heldout"] if ending and "heldout" in set(table["split"]) else None
    if style is not None and style["style_before"] < 0.5:  # a style the model did not have before
        print(f"口調「{ending}」の答え (学習に使わなかった質問): {style['style_before']:.0%} → {style['style_after']:.0%}、"
              f"中身が正しい答え: {style['content_before']:.0%} → {style['content_after']:.0%}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m tooling.notebooks", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["sync", "run"])
    parser.add_argument("out", nargs="?", type=Path, default=REPO_ROOT / "outputs", help="run: 出力フォルダ")
    parser.add_argument("--only", default="", help="run: この番号 (00〜05) のノートブックだけ")
    parser.add_argument("--since", default="", help="run: この番号からのノートブック (例: 01)")
    parser.add_argument("--upto", default="", help="run: この番号までのノートブック (例: 04)")
    parser.add_argument("--model", default="", help="run: 練習用の tiny の代わりに、このモデル (フォルダ) でノートブックの既定の設定のまま")
    args = parser.parse_args(argv)
    if args.command == "sync":
        sync()
    elif args.only and not any(s.stem.startswith(args.only) for s in sources()):
        parser.error(f"--only {args.only}: そのノートブックはありません ({', '.join(s.stem[:2] for s in sources())} のどれか)")
    else:
        run(args.out, only=args.only, upto=args.upto, since=args.since, model=args.model)


if __name__ == "__main__":
    main(sys.argv[1:])
