"""Checkpoints and epoch adapters: resuming 03 from the last whole one, keeping each epoch's
adapter (and little else: on Colab they are written to Drive), and choosing which one 04 scores."""
from __future__ import annotations

import json
import math
import tempfile
import zipfile
from pathlib import Path

import pandas as pd
import torch
from transformers import TrainerCallback

from . import artefacts
from .errors import TutorialError
from .processes import is_writer, wait_for_everyone

FILES = "tutorial_files.json"  # written last into each checkpoint: every file the Trainer wrote, and its size
ADAPTER_ONLY = "tutorial_adapter_only"  # in the best epoch's checkpoint once only its adapter is kept
RESUME_ONLY = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state")  # what only resuming needs


def damage(checkpoint: Path) -> str | None:
    """Why a checkpoint folder can't be resumed from (in Japanese), or None: only its adapter kept, a file
    of its list missing or of another size (not yet arrived on Drive), no list and no trainer state (a save
    cut off; checkpoints from before the lists have the state, which `Trainer` writes last), broken JSON,
    a truncated safetensors file, or a torch file (zip) that fails its checksums."""
    if (checkpoint / ADAPTER_ONLY).exists():
        return "検証用の損失がいちばん低いエポックのアダプターだけを残したものです (再開には使いません)"
    if (checkpoint / FILES).exists() or not (checkpoint / "trainer_state.json").exists():
        try:
            files = json.loads((checkpoint / FILES).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return f"保存の途中で切れています ({FILES} がありません)"
        wrong = [name for name, size in files.items()
                 if not (checkpoint / name).is_file() or (checkpoint / name).stat().st_size != size]
        if wrong:
            return f"{', '.join(wrong)} がないか、大きさが保存したときと違います (書き込みの途中か、Drive にまだ届いていません)"
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
    found = numbered(folder)
    for checkpoint in reversed(found):
        problem = damage(checkpoint)
        if problem is None:
            return str(checkpoint)
        if is_writer():
            print(f"{checkpoint.name} は使いません: {problem}。ひとつ前のチェックポイントを探します。")
    if found and is_writer():
        print("使えるチェックポイントがないので、最初から学習します。")
    return None


def resume_point(folder: Path, resume: bool = True) -> str | None:
    """The last complete checkpoint in this run's folder (`artefacts.start_run`), None when `resume`
    is off. Under DDP every process waits here until the first one has set the folder up."""
    wait_for_everyone()
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


def numbered(folder: Path) -> list[Path]:
    """The `checkpoint-N` folders in `folder`, oldest first (not Drive's copies like "checkpoint-8 (1)")."""
    found = [c for c in Path(folder).glob("checkpoint-*") if c.name.split("-", 1)[1].isdigit()]
    return sorted(found, key=lambda c: int(c.name.split("-")[1]))


def half(adapter: Path) -> None:
    """Store a saved adapter's fp32 weights in fp16 (half the size; peft loads them back as fp32),
    unless one would overflow it."""
    from safetensors.torch import load_file, save_file

    path = Path(adapter) / "adapter_model.safetensors"
    weights = load_file(path)
    halved = {name: w.half() if w.dtype == torch.float32 else w for name, w in weights.items()}
    if all(torch.isfinite(w).all() for w in halved.values() if w.is_floating_point()):
        save_file(halved, path, metadata={"format": "pt"})


def write_file_list(checkpoint: Path) -> None:
    """The list of a checkpoint's files and sizes, written last: resuming takes a checkpoint only when all are there."""
    files = {f.name: f.stat().st_size for f in Path(checkpoint).iterdir() if f.is_file() and f.name != FILES}
    artefacts.save(Path(checkpoint) / FILES, files)


def save_callback():
    """A `Trainer` callback for each save (an epoch, after its evaluation; an epoch `overflow.guard` stops
    is never saved): the epoch's adapter in fp16 in `epochs/epoch-NNN` (04 compares them), the list of the
    checkpoint's files (resuming takes a complete one only), and the older checkpoints deleted, emptied
    first (`artefacts.remove`): the one before the newest stays until training ends (it may still be on
    its way to Drive), the best one keeps its adapter, which `load_best_model_at_end` loads."""
    class OnSave(TrainerCallback):
        def on_save(self, args, state, control, model=None, **kwargs):
            wait_for_everyone()  # every process has written its files (rng_state_N.pth)
            if not state.is_world_process_zero:
                return
            folder = Path(args.output_dir)
            with artefacts.writing(folder / artefacts.EPOCHS / f"epoch-{round(state.epoch):03d}") as partial:
                model.save_pretrained(partial)
                half(partial)
            write_file_list(folder / f"checkpoint-{state.global_step}")
            prune(folder, state, keep=2)

        def on_train_end(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                prune(Path(args.output_dir), state, keep=1)

    return OnSave()


def prune(folder: Path, state, keep: int) -> None:
    """Delete all but the `keep` newest checkpoints, emptied first; the best one keeps its adapter only."""
    found = numbered(folder)
    best = Path(state.best_model_checkpoint) if state.best_model_checkpoint else None
    for old in found[:-keep]:
        if old != best:
            artefacts.remove(old)
            continue
        for file in old.iterdir():
            if file.name.startswith(RESUME_ONLY):
                artefacts.remove(file)
        (old / ADAPTER_ONLY).write_text("")


def footprint(trainable: int, epochs: int, tokenizer_bytes: int, optim: str) -> dict[str, float]:
    """MiB that 03 keeps and writes in the output folder (Drive on Colab), from the trainable parameter count:
    a checkpoint holds the adapter (fp32), the optimizer's state (AdamW: two fp32 numbers a parameter; 8-bit:
    two bytes) and the tokenizer; an epoch adapter is fp16. Kept: the newest checkpoint, the best one's
    adapter, every epoch adapter and `adapter/`. Written: a checkpoint and an epoch adapter each epoch, then `adapter/`."""
    adapter = trainable * 4
    checkpoint = adapter + trainable * (2 if "8bit" in optim else 8) + tokenizer_bytes
    epoch = trainable * 2
    mb = {"checkpoint": checkpoint, "epoch_adapter": epoch, "adapter": adapter,
          "kept": checkpoint + adapter + epochs * epoch + adapter, "written": epochs * (checkpoint + epoch) + adapter}
    return {name: size / 2**20 for name, size in mb.items()}


def tokenizer_bytes(tokenizer) -> int:
    """The size of the tokenizer's files, as the Trainer saves them into each checkpoint."""
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer.save_pretrained(scratch)
        return sum(f.stat().st_size for f in Path(scratch).iterdir())


def footprint_note(trainable: int, tokenizer, args) -> str:
    """03's note before training, in Japanese: what the run will keep and write in the output folder."""
    epochs = math.ceil(args.num_train_epochs)
    mb = footprint(trainable, epochs, tokenizer_bytes(tokenizer), str(getattr(args.optim, "value", args.optim)))
    return (f"この学習が出力フォルダ (Colab では Drive) に残すもの: 約 {mb['kept']:,.0f} MB (最新のチェックポイント {mb['checkpoint']:,.0f} MB、"
            f"検証用の損失がいちばん低いエポックのアダプター、エポックごとのアダプター {epochs} 個 × {mb['epoch_adapter']:,.1f} MB、adapter/)。"
            f"書き込むのは全部で約 {mb['written']:,.0f} MB です。古いチェックポイントは空にしてから消すので、Drive のゴミ箱はほとんど増えません。")


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
