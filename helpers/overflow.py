"""fp16 overflow, read from what the model does, never from its name: one forward before training or
answering in fp16 (fp32 instead when the logits are not finite), and a guard that stops a training run
whose loss, weights or loss scale stop being finite."""
from __future__ import annotations

import dataclasses
import math

import torch
from transformers import TrainerCallback

from .errors import TutorialError
from .prompts import encode, prompt_ids, row_messages, training_example

FP16_MAX = torch.finfo(torch.float16).max  # 65504
SAMPLE = "日本の首都はどこですか？"  # asked when no data row is given
MIN_SCALE = 1.0  # fp16's loss scale starts at 65536 and halves at every overflow: below 1, fp16 cannot hold the gradients
FIXES = ("直し方: bf16 が使える GPU (compute capability 8.0 以上: L4、A100 など。Colab の有料プラン) で実行する / "
         "(まだなら) 03 の USE_4BIT をオンにする (重みが 4 ビットになってメモリが減り、fp32 の計算が T4 に収まりやすくなります) / 小さいモデルを選ぶ")
LOGGED = {"loss": "学習用の損失", "eval_loss": "検証用の損失"}  # what `guard` reads from the Trainer's logs


def _ids(tokenizer, row: dict | None) -> list[int]:
    """A real sample: a training row (its whole conversation, or its text), or one question's prompt."""
    if row is None:
        return prompt_ids(tokenizer, SAMPLE)
    ids = encode(tokenizer, row["text"]) if "text" in row else training_example(tokenizer, row_messages(row))["input_ids"]
    return ids[:256]  # a long row tells no more, and would need more memory


@torch.no_grad()
def finite(model, ids: list[int]) -> bool:
    """Whether every logit of one forward on `ids` is finite."""
    logits = model(input_ids=torch.tensor([ids], device=model.device)).logits
    return bool(torch.isfinite(logits).all())


def safe_precision(model, tokenizer, precision, row: dict | None = None, needed_bytes: int | None = None):
    """`precision`, or float32 when `model` (loaded in fp16) overflows on a real sample: a training `row`
    or a question. fp32 is chosen when it fits (`needed_bytes`, by default the weights in fp32 and a
    fifth more, against the free GPU memory once the fp16 model is gone, and the fp32 weights against what
    is free beside it while they load); otherwise stop with the fixes."""
    if precision.dtype != torch.float16 or finite(model, _ids(tokenizer, row)):
        return precision
    why = (f"このモデルは fp16 では計算があふれます (途中の値が fp16 の上限 {FP16_MAX:,.0f} を超え、答えがすべて NaN になります。"
           "Gemma 2/3 などで知られています)。")
    if precision.device == "cuda":
        free, weights = torch.cuda.mem_get_info()[0], sum(p.numel() for p in model.parameters()) * 4
        needed = needed_bytes or int(weights * 1.2)
        if needed > 0.9 * (free + model.get_memory_footprint()) or weights > 0.9 * free:
            raise TutorialError(why + f"fp32 に切り替えるとメモリが足りません (必要 約 {needed / 2**30:.1f} GiB / "
                                      f"空き 約 {free / 2**30:.1f} GiB)。\n{FIXES}")
    reason = why + "fp32 (32 ビット) で読み込み直して続けます (メモリは約 2 倍になり、T4 では遅くなります。エラーではないので、このまま進めて大丈夫です)。"
    print(reason)
    return dataclasses.replace(precision, dtype=torch.float32, fp16=False, bf16=False, reason=reason)


def guard():
    """A `Trainer` callback that stops training, before the epoch is saved as a checkpoint, when the
    logged loss is not finite, a LoRA weight is not, or fp16's loss scale keeps falling (every update
    skipped): with a Japanese message instead of a run that silently learns nothing."""
    class StopWhenNotFinite(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, optimizer=None, **kwargs):
            scaler = getattr(optimizer, "scaler", None)
            if scaler is not None and scaler.is_enabled() and scaler.get_scale() < MIN_SCALE:
                _stop(f"fp16 で勾配があふれて更新が飛ばされ続け、loss scale (あふれを防ぐために損失にかける倍率。飛ばすたびに半分になります) が"
                      f" {scaler.get_scale():g} まで下がりました (更新 {state.global_step} 回目)。")
            trained = [p for p in model.parameters() if p.requires_grad]
            if trained and not torch.isfinite(torch.stack([p.detach().abs().max() for p in trained]).max()):
                _stop(f"更新 {state.global_step} 回目で LoRA の重みが inf か NaN になりました。")

        def on_log(self, args, state, control, logs=None, **kwargs):
            # not the gradient norm: in fp16 it is inf at every update the loss scale skips on purpose
            broken = {k: v for k, v in (logs or {}).items() if k in LOGGED and isinstance(v, float) and not math.isfinite(v)}
            if broken:
                _stop(f"エポック {state.epoch:g} の" + "と".join(f"{LOGGED[k]}が {v}" for k, v in broken.items()) + " です。")

    return StopWhenNotFinite()


def _stop(what: str) -> None:
    raise TutorialError(f"学習を止めました: {what}数値があふれたので、このまま続けても何も学びません"
                        "(このエポックはチェックポイントにもアダプターにもしません)。\n"
                        "fp16 (T4) なら: 新しいセルで import os; os.environ[\"FINETUNE_PRECISION\"] = \"fp32\" を実行してから、"
                        "このノートブックを 1 の設定のセルから実行し直して fp32 にするか、" + FIXES.removeprefix("直し方: ")
                        + "。\nどの精度でも: LEARNING_RATE を下げてください (例: 2e-4 → 1e-4)。")
