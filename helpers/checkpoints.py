"""Checkpoints and epoch adapters: resuming 03 from the last whole one, keeping each epoch's
adapter, and choosing which one 04 scores."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import torch
from transformers import TrainerCallback

from . import artefacts
from .errors import TutorialError


def damage(checkpoint: Path) -> str | None:
    """Why a checkpoint folder can't be resumed from (in Japanese), or None: a missing trainer state
    (`Trainer` writes it last, so a save cut off leaves none), broken JSON, a truncated safetensors
    file, or a torch file (zip) that fails its checksums."""
    if not (checkpoint / "trainer_state.json").exists():
        return "保存の途中で切れています (trainer_state.json がありません)"
    for path in sorted(checkpoint.iterdir()):
        try:
            if path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            elif path.suffix == ".safetensors":
                with path.open("rb") as f:
                    size = int.from_bytes(f.read(8), "little")
                    if size > path.stat().st_size:
                        raise ValueError("途中で切れています")
                    header = json.loads(f.read(size))
                ends = [t["data_offsets"][1] for name, t in header.items() if name != "__metadata__"]
                if path.stat().st_size < 8 + size + max(ends, default=0):
                    raise ValueError("途中で切れています")
            elif path.suffix in (".pt", ".pth", ".bin"):  # torch.save writes zip archives
                with zipfile.ZipFile(path) as archive:
                    if archive.testzip() is not None:
                        raise ValueError("中身が壊れています")
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, zipfile.BadZipFile, OSError) as problem:
            return f"{path.name} を読めません ({problem})"
    return None


def last_complete_checkpoint(folder: Path) -> str | None:
    """The newest `checkpoint-N` that can be resumed from; newer broken ones are named and skipped."""
    numbered = [c for c in Path(folder).glob("checkpoint-*") if c.name.split("-", 1)[1].isdigit()]  # not "checkpoint-8 (1)"
    for checkpoint in sorted(numbered, key=lambda c: int(c.name.split("-")[1]), reverse=True):
        problem = damage(checkpoint)
        if problem is None:
            return str(checkpoint)
        if artefacts.is_writer():
            print(f"{checkpoint.name} は使いません: {problem}。ひとつ前のチェックポイントを探します。")
    if numbered and artefacts.is_writer():
        print("使えるチェックポイントがないので、最初から学習します。")
    return None


def resume_point(folder: Path, resume: bool = True) -> str | None:
    """The last complete checkpoint in this run's folder (`artefacts.start_run`), None when `resume`
    is off. Under DDP every process waits here until the first one has set the folder up."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    return last_complete_checkpoint(folder) if resume else None


def tokens_seen(checkpoint: str | None) -> int:
    """Non-padding tokens already trained at `checkpoint` (0 without one): a resumed run's speed counts only its own."""
    if not checkpoint:
        return 0
    return json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8")).get("num_input_tokens_seen", 0)


def best_epoch(log_history: list[dict]) -> tuple[float, float]:
    """(epoch, validation loss) of the lowest validation loss."""
    evals = [(e["eval_loss"], e["epoch"]) for e in log_history if "eval_loss" in e]
    loss, epoch = min(evals)
    return epoch, loss


def epoch_adapters_callback(folder: Path):
    """A `Trainer` callback that keeps each epoch's adapter (LoRA weights only, small) in
    `folder/epoch-NNN`, so notebook 04 can compare epochs and pick the one before overfitting. It is
    written with the epoch's checkpoint, after its evaluation: an epoch `overflow.guard` stops keeps neither."""
    class KeepEpochAdapters(TrainerCallback):
        def on_save(self, args, state, control, model=None, **kwargs):
            if state.is_world_process_zero:
                with artefacts.writing(Path(folder) / f"epoch-{round(state.epoch):03d}") as partial:
                    model.save_pretrained(partial)

    return KeepEpochAdapters()


def choice(choice, epochs: dict[int, Path]) -> str | int:
    """04's CHECKPOINT: "recommended", "adapter" or the number of an epoch that has an adapter."""
    choice = str(choice).strip()
    if choice in ("recommended", "adapter"):
        return choice
    if choice.isdigit() and int(choice) in epochs:
        return int(choice)
    have = (f"エポックの番号 ({min(epochs)}〜{max(epochs)})" if epochs else
            "エポックの番号 (いまは 03 のエポックごとのアダプターがないので使えません)")
    raise TutorialError(f"CHECKPOINT = {choice!r} は使えません。recommended、adapter、または{have} にしてください。")


def recommended(per_epoch: pd.DataFrame) -> int:
    """The epoch to keep: the best validation exact match less the share of general questions that got a
    trained answer (`leak_rate`); of those, the one whose general text is least perplexing (the least harm
    done), then the lower validation loss, then the earlier epoch."""
    ranked = per_epoch.reset_index().assign(score=per_epoch["exact_match"].values - per_epoch["leak_rate"].values)
    order = ["score", "general_perplexity", "validation_loss", "epoch"]
    return int(ranked.sort_values(order, ascending=[False, True, True, True]).iloc[0]["epoch"])
