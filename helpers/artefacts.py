"""The files that pass between notebooks: one name for each, written whole or not at all, and
stamped with the run they came from.

    出力フォルダ/                      written by → read by
      baseline_answers.csv           01 → 04   the base model's answers to the control questions
      prepared/{train,validation}.jsonl  02 → 03, 04
      prepared/settings.json         02 → 03   the MODEL and MAX_LENGTH 02 checked the data with (03's defaults)
      checkpoints/<run>/             03        checkpoint-N/ (to resume), epochs/epoch-NNN/ (→ 04), tutorial_run.json
      adapter/                       03 → 04   the adapter with the lowest validation loss, tutorial_run.json inside
      train_settings.json            03 → python -m helpers.train   the form values of the last finished run
      loss_history.csv, loss.png     03        to read
      evaluated_adapter/             04 → 05   the adapter 04 scored, its scores in tutorial_run.json
      comparison.csv, summary.csv, perplexity.csv, numeric.csv, epochs.png, numeric.png, report.html   04
      merged/                        05
      gguf/                          05 → llama.cpp, Ollama, LM Studio   model-<type>.gguf, adapter-lora-f16.gguf, Modelfile

A run is 03's settings plus 02's data: its id is their hash, so a changed setting (or new data)
starts a new `checkpoints/<run>/` beside the old ones instead of resuming or deleting them.
Files are written under a temporary name and renamed into place only when complete, so a step
that fails leaves the previous results whole (and a half-written file is never read as complete).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from datetime import datetime
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import TutorialError, japanese_errors
from .processes import is_writer

BASELINE = "baseline_answers.csv"
PREPARED = "prepared"
PREPARED_FILES = ("train.jsonl", "validation.jsonl")
PREPARED_SETTINGS = "settings.json"
CHECKPOINTS = "checkpoints"
EPOCHS = "epochs"
ADAPTER = "adapter"
SETTINGS = "train_settings.json"
LOSS_HISTORY, LOSS_PLOT = "loss_history.csv", "loss.png"
EVALUATED = "evaluated_adapter"
COMPARISON, SUMMARY, PERPLEXITY, NUMERIC = "comparison.csv", "summary.csv", "perplexity.csv", "numeric.csv"
GENERAL = "general.csv"  # 04: ELYZA-tasks-100 before and after (helpers.general)
QUICKSTART = "quickstart"  # 00's own subfolder: what 04 wrote stays 04's
EPOCHS_PLOT, NUMERIC_PLOT, REPORT = "epochs.png", "numeric.png", "report.html"
MERGED = "merged"
GGUF = "gguf"
STAMP = "tutorial_run.json"  # inside a folder: which run it came from
NOT_IN_RUN = {"RESUME"}  # settings that do not change what is trained


def wait_for(paths: list[Path], timeout: float = 600) -> None:
    """In the other processes of `accelerate launch`: wait until the first one has written `paths`."""
    deadline = time.monotonic() + timeout
    while not all(Path(p).exists() for p in paths) and time.monotonic() < deadline:
        time.sleep(0.5)


def partial(path: Path) -> Path:
    """Where `path` is written before it is complete (same folder, so the final rename is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.partial{path.suffix}")


@contextmanager
def writing(path: Path):
    """Yield a temporary path to write a file or a folder into; on success it replaces `path`
    (the old one stays whole until then), on failure it is removed."""
    path, temporary = Path(path), partial(path)
    if not is_writer():  # another process of `accelerate launch`: its copy is thrown away
        with tempfile.TemporaryDirectory() as scratch:
            yield Path(scratch) / path.name
        return
    try:
        with japanese_errors(f"{path.name} の保存"):  # a full disk, a read-only folder: what to do, in Japanese
            remove(temporary)
            path.parent.mkdir(parents=True, exist_ok=True)
            yield temporary
            if temporary.is_dir() and path.exists():  # a folder can't replace a folder in one step: swap
                old = path.with_name(f".{path.name}.old")
                remove(old)
                path.rename(old)
                temporary.rename(path)
                remove(old)
            else:
                os.replace(temporary, path)
    except BaseException:
        old = path.with_name(f".{path.name}.old")
        if old.exists() and not path.exists():  # the swap failed halfway: the previous result comes back
            old.rename(path)
        remove(temporary)
        raise


def save(path: Path, content, **options) -> Path:
    """Write a table (`to_csv` options), a figure, a dict (JSON) or text to `path`, whole or not at all."""
    with writing(path) as temporary:
        if hasattr(content, "to_csv"):
            content.to_csv(temporary, **options)
        elif hasattr(content, "savefig"):
            content.savefig(temporary, **{"dpi": 120} | options)
        elif isinstance(content, (dict, list)):
            temporary.write_text(json.dumps(content, ensure_ascii=False, indent=2), encoding="utf-8")
        else:
            temporary.write_text(str(content), encoding="utf-8")
    return Path(path)


def remove(path: Path) -> None:
    """Delete a file or a folder, each file emptied first: on Drive a deleted file goes to the trash, which
    uses the account's space until it is emptied, so only empty files end up there."""
    path = Path(path)
    if path.is_symlink():  # a link to a folder kept elsewhere: only the link goes
        path.unlink()
        return
    files = [path] if path.is_file() else list(path.rglob("*")) if path.is_dir() else []
    for file in files:
        if file.is_file() and not file.is_symlink() and file.stat().st_nlink == 1:  # nothing shared is emptied
            os.truncate(file, 0)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def size_mb(path: Path) -> float:
    """The size of a file, or of everything in a folder, in MiB."""
    path = Path(path)
    return sum(f.stat().st_size for f in ([path] if path.is_file() else path.rglob("*")) if f.is_file()) / 2**20


def data_id(out: Path) -> str:
    """A fingerprint of 02's prepared data (its files' contents)."""
    digest = hashlib.sha256()
    for name in PREPARED_FILES:
        digest.update(Path(out, PREPARED, name).read_bytes())
    return digest.hexdigest()[:12]


def run_id(settings: dict, data: str) -> str:
    """The run's name: a hash of the settings that change training and of the data."""
    key = {name: value for name, value in settings.items() if name not in NOT_IN_RUN}
    return hashlib.sha256(json.dumps([key, data], sort_keys=True).encode()).hexdigest()[:10]


def stamp(folder: Path, run: str, **facts) -> None:
    """Write the run (and other facts) into a folder artefact; written last, so a complete folder has one."""
    save(Path(folder) / STAMP, {"run": run, **facts})


def read_stamp(folder: Path, notebook: str) -> dict:
    """A folder artefact's stamp; without one the folder is incomplete or from before stamps: run `notebook` again."""
    try:
        return json.loads((Path(folder) / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise TutorialError(f"{folder} に、どの学習の結果かの記録 ({STAMP}) がありません (途中で止まったか、古い版のノートブックの出力です)。"
                            f"{notebook} を最後まで実行し直してください。") from None


def trained_run(out: Path) -> dict:
    """03's adapter stamp, checked against 02's data as it is now: 02 re-run since means 03's
    adapter was trained on other data, so 03 must run again."""
    run = read_stamp(Path(out) / ADAPTER, "03_lora_finetune.ipynb")
    if run.get("data") != data_id(out):
        raise TutorialError(f"02 のデータ ({Path(out) / PREPARED}) が、03 で学習したときのデータと違います (03 のあとで 02 を実行し直しましたか?)。"
                            "このままでは、別のデータで学習したアダプターを採点することになります。03 を実行し直してください。")
    return run


def epoch_adapters(out: Path, run: dict) -> dict[int, Path]:
    """{epoch: adapter folder} of the training `run` (03's adapter stamp) came from; none when the run's
    folder now holds another training (RESUME off, not finished) or was deleted."""
    folder = Path(out) / CHECKPOINTS / run["run"]
    try:
        same = json.loads((folder / STAMP).read_text(encoding="utf-8"))["started"] == run.get("started")
    except (OSError, ValueError, KeyError):
        same = False
    if not same:
        print(f"{folder} には 03 の adapter/ と同じ学習のエポックごとのアダプターがないので、adapter/ だけを使います。")
        return {}
    found = {p.name.split("-")[1]: p for p in sorted((folder / EPOCHS).glob("epoch-*"))}
    return {int(epoch): path for epoch, path in found.items() if epoch.isdigit()}


def save_evaluated(out: Path, adapter: Path, tokenizer, run: dict, *, checkpoint, summary) -> Path:
    """04: keep the adapter it scored (with the tokenizer, for 05) and, in its stamp, its scores."""
    with writing(Path(out) / EVALUATED) as folder:
        shutil.copytree(adapter, folder, ignore=shutil.ignore_patterns(STAMP, "README.md"))
        tokenizer.save_pretrained(folder)
        stamp(folder, run["run"], data=run["data"], settings=run["settings"], started=run.get("started"),
              checkpoint=checkpoint, summary=summary.reset_index().to_dict("records"))
    return Path(out) / EVALUATED


def evaluated_run(out: Path) -> tuple[Path, dict]:
    """The adapter to share and its stamp: the one 04 scored when 04 ran on 03's latest run,
    else 03's adapter (no scores). 04 results from an older run stop here with what to re-run."""
    out = Path(out)
    trained = read_stamp(out / ADAPTER, "03_lora_finetune.ipynb")
    if not (out / EVALUATED).exists():
        print("04 の結果 (evaluated_adapter/) がないので、03 のアダプター (検証用の損失がいちばん低いエポック) を使います。"
              "モデルカードに学習前後の採点を載せるには、先に 04 を実行してください。")
        return out / ADAPTER, trained
    evaluated = read_stamp(out / EVALUATED, "04_compare_after_tuning.ipynb")
    if (evaluated["run"], evaluated.get("started")) != (trained["run"], trained.get("started")):
        raise TutorialError(f"04 が採点したのは前の学習 (実行 {evaluated['run']}) のアダプターで、03 の最新の学習 (実行 {trained['run']}) "
                            "ではありません。04 を実行し直してください (採点なしで 03 のアダプターを使うなら、"
                            f"{out / EVALUATED} を削除してから、このセルを実行し直します)。")
    return out / EVALUATED, evaluated


def other_runs(out: Path, run: str) -> list[Path]:
    """Run folders in `checkpoints/` other than `run`, newest first."""
    folders = [f for f in (Path(out) / CHECKPOINTS).glob("*") if f.is_dir() and f.name != run]
    return sorted(folders, key=lambda f: f.stat().st_mtime, reverse=True)


@dataclass
class Run:
    id: str       # hash of the settings and the data
    folder: Path  # checkpoints/<id>/
    data: str     # the data's fingerprint
    started: str = ""  # when this folder's training began: tells apart trainings of one run (RESUME off)


@japanese_errors("チェックポイントのフォルダの準備")  # a read-only or full output folder: what to do, in Japanese
def start_run(out: Path, settings: dict, resume: bool = True) -> Run:
    """The run of 03's settings and 02's data, and its folder `checkpoints/<run>/`. Other runs are
    kept and listed with how to delete them; with `resume` off an existing folder of this run is
    renamed aside (kept) so training starts over."""
    out = Path(out)
    data = data_id(out)
    run = run_id(settings, data)
    folder = out / CHECKPOINTS / run
    if not is_writer():  # under DDP the first process sets the folder up
        return Run(run, folder, data)
    if not resume and folder.exists():
        aside = folder.with_name(f"{run}-{time.strftime('%Y%m%d-%H%M%S')}")
        folder.rename(aside)
        print(f"RESUME がオフなので、最初から学習します。この設定の前の途中経過は {aside.name} に残しました。")
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / STAMP).exists():
        stamp(folder, run, data=data, settings=settings, started=datetime.now().isoformat(timespec="microseconds"))
    kept = other_runs(out, run)
    if kept:
        print(f"ほかの学習 (設定かデータが違うもの、RESUME をオフにしたときの前の途中経過) {len(kept)} 件は、"
              f"{out / CHECKPOINTS} に残してあります (この学習は {run})。要らなければフォルダごと削除して、ディスクを空けられます"
              "(Drive では、そのあとゴミ箱も空にします): "
              + ", ".join(f"{f.name} ({size_mb(f):,.1f} MB)" for f in kept))
    return Run(run, folder, data, read_stamp(folder, "03_lora_finetune.ipynb")["started"])
