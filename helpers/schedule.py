"""How long notebook 03 trains: weight updates, automatic epochs, the time estimate while it runs."""
from __future__ import annotations

import math
import time

from transformers import TrainerCallback

from . import env

# fp16's GradScaler starts at scale 65536 and skips every step whose gradients overflow, halving
# the scale each time; the first few steps of a run often change nothing.
FP16_WARMUP_STEPS = 5
# EPOCHS = 0: about this many rows seen in all (a small set is repeated more), 2 to 20 epochs. On real weights
# (Gemma 3 270M, the 48-row sample with its general rows) the held-out answers were learnt by epoch 5, while
# trained answers leaked into general questions from epoch 2 or 3 on: more epochs taught nothing more (README).
ROWS_SEEN, MIN_EPOCHS, MAX_EPOCHS = 320, 2, 20


def optimizer_steps(rows: int, batch_size: int, grad_accum: int, epochs: int, processes: int | None = None) -> int:
    """Weight updates in a run: batches per epoch (per process under DDP), divided by accumulation, times epochs."""
    processes = processes or env.world_size()
    return math.ceil(math.ceil(rows / (batch_size * processes)) / grad_accum) * epochs


def auto_epochs(rows: int) -> int:
    """Epochs for `rows` training rows when EPOCHS is 0: 7 for the sample (32 rows and 16 general ones),
    2 from 160 rows on."""
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
    slower one left out), says how long is left (not the clock time: Colab's runtime runs on UTC), and updates
    the estimate a few times per run."""
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
                per_epoch = any(getattr(s, "value", s) != "no" for s in (args.eval_strategy, args.save_strategy))
                print(f"最初の {measured_steps} 回の更新から見積もると、残り {state.max_steps - state.global_step} 回で約 "
                      f"{duration(self._left(state))}"
                      + (" (エポックごとの評価と保存の時間は含まないので、エポックの終わりに見積もり直します)。" if per_epoch else "。"),
                      flush=True)

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
