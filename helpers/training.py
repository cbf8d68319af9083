"""What notebook 03 needs around `Trainer`: step counts, resuming, the best epoch, figures."""
from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
import zipfile
from pathlib import Path

import torch

from . import artefacts
from .errors import TutorialError

# fp16's GradScaler starts at scale 65536 and skips every step whose gradients overflow, halving
# the scale each time; the first few steps of a run often change nothing.
FP16_WARMUP_STEPS = 5
# EPOCHS = 0: about this many rows seen in all (a small set is repeated more), 2 to 20 epochs
ROWS_SEEN, MIN_EPOCHS, MAX_EPOCHS = 640, 2, 20


def optimizer_steps(rows: int, batch_size: int, grad_accum: int, epochs: int, processes: int | None = None) -> int:
    """Weight updates in a run: batches per epoch (per process under DDP), divided by accumulation, times epochs."""
    processes = processes or world_size()
    return math.ceil(math.ceil(rows / (batch_size * processes)) / grad_accum) * epochs


def auto_epochs(rows: int) -> int:
    """Epochs for `rows` training rows when EPOCHS is 0: 20 for the 32-row sample, 2 from 320 rows on."""
    return min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(ROWS_SEEN / max(rows, 1))))


def duration(seconds: float) -> str:
    """3725 → "1 時間 2 分", 200 → "3 分 20 秒", 42 → "42 秒"."""
    seconds = round(seconds)
    hours, minutes = divmod(seconds // 60, 60)
    if hours:
        return f"{hours} 時間 {minutes} 分"
    return f"{minutes} 分 {seconds % 60} 秒" if minutes else f"{seconds} 秒"


def time_callback(measured_steps: int = 5):
    """A `Trainer` callback that estimates the training time from the first updates (the very first,
    slower one left out), says when it will end, and updates the estimate a few times per run."""
    from transformers import TrainerCallback

    class Estimate(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.first, self.started = state.global_step, None
            self.report_every = max(1, round(args.num_train_epochs) // 5)

        def _left(self, state) -> float:
            done = state.global_step - self.first - 1
            return (time.monotonic() - self.started) / done * (state.max_steps - state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == self.first + 1:
                self.started = time.monotonic()
            elif state.global_step == self.first + 1 + measured_steps and state.is_world_process_zero:
                left = self._left(state)
                print(f"最初の {measured_steps} 回の更新から見積もると、残り {state.max_steps - state.global_step} 回で約 "
                      f"{duration(left)} (終わる目安 {time.strftime('%H:%M', time.localtime(time.time() + left))}。"
                      "エポックごとの評価と保存の時間は含まないので、エポックの終わりに見積もり直します)。", flush=True)

        def on_epoch_end(self, args, state, control, **kwargs):
            epoch = round(state.epoch)
            if (self.started and state.global_step > self.first + 1 + measured_steps and state.is_world_process_zero
                    and epoch % self.report_every == 0 and state.global_step < state.max_steps):
                print(f"エポック {epoch}/{round(args.num_train_epochs)} が終わりました。残りは約 {duration(self._left(state))}。",
                      flush=True)

    return Estimate()


def warn_few_steps(steps: int, fp16: bool) -> str:
    """Print (and return) a Japanese warning when an fp16 run is too short for the GradScaler."""
    if fp16 and steps < 4 * FP16_WARMUP_STEPS:
        message = (f"注意: 重みの更新は {steps} 回だけです。fp16 では最初の数回 (目安 {FP16_WARMUP_STEPS} 回) の更新が"
                   f"スキップされることがあるので、少なくとも {4 * FP16_WARMUP_STEPS} 回になるよう EPOCHS を増やすか、"
                   "BATCH_SIZE × GRAD_ACCUM を小さくしてください。")
        print(message)
        return message
    return ""


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


def peak_memory_mb() -> float:
    """Peak GPU memory allocated by torch, or this process's peak resident memory on CPU."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def world_size() -> int:
    """Processes in this run (`torchrun` / `accelerate launch` set WORLD_SIZE; 1 otherwise)."""
    return int(os.environ.get("WORLD_SIZE", 1))


def device_map(device: str):
    """Where `from_pretrained` puts the model: this process's GPU (one per process under DDP) or CPU."""
    return {"": int(os.environ.get("LOCAL_RANK", 0))} if device == "cuda" else device


def epoch_adapters_callback(folder: Path):
    """A `Trainer` callback that keeps each epoch's adapter (LoRA weights only, small) in
    `folder/epoch-NNN`, so notebook 04 can compare epochs and pick the one before overfitting."""
    from transformers import TrainerCallback

    class KeepEpochAdapters(TrainerCallback):
        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            if state.is_world_process_zero:
                with artefacts.writing(Path(folder) / f"epoch-{round(state.epoch):03d}") as partial:
                    model.save_pretrained(partial)

    return KeepEpochAdapters()


def checkpoint_choice(choice, epochs: dict[int, Path]) -> str | int:
    """04's CHECKPOINT: "recommended", "adapter" or the number of an epoch that has an adapter."""
    choice = str(choice).strip()
    if choice in ("recommended", "adapter"):
        return choice
    if choice.isdigit() and int(choice) in epochs:
        return int(choice)
    have = (f"エポックの番号 ({min(epochs)}〜{max(epochs)})" if epochs else
            "エポックの番号 (いまは 03 のエポックごとのアダプターがないので使えません)")
    raise TutorialError(f"CHECKPOINT = {choice!r} は使えません。recommended、adapter、または{have} にしてください。")
