"""Form values: checked against their ranges, overridable from the environment (`TUTORIAL_<NAME>`).

The overrides let CI and `make demo` run the same notebooks on the tiny model
(`TUTORIAL_MODEL=tiny`, more epochs and a higher learning rate suited to it) without editing them.
"""
from __future__ import annotations

import os
from types import SimpleNamespace

from .errors import TutorialError

PREFIX = "TUTORIAL_"
FROM_01, FROM_02 = "01 と同じ", "02 と同じ"  # a value entered once: 02 takes 01's MODEL, 03 02's MODEL and MAX_LENGTH
TYPED_CHOICES = {"MAX_LENGTH"}  # numbers offered as a dropdown in some notebook: Colab gives them as text
# Every numeric form field: lowest and highest allowed value (integers when both are), and the usual choice.
RANGES = {
    "EPOCHS": (0, 1000, "0 ならデータの行数から自動。ふつうは 2〜20"),
    "LEARNING_RATE": (1e-6, 1e-2, "LoRA では 0.0001〜0.0003 (1e-4〜3e-4) がふつう"),
    "BATCH_SIZE": (1, 512, "T4 では 1〜8"),
    "GRAD_ACCUM": (1, 512, "ふつうは 1〜8"),
    "LORA_R": (1, 512, "ふつうは 4〜64"),
    "LORA_ALPHA": (1, 1024, "ふつうは r の 1〜2 倍"),
    "LORA_DROPOUT": (0.0, 0.9, "ふつうは 0〜0.1"),
    "MAX_LENGTH": (16, 131072, "ふつうは 128〜1024"),
    "MAX_NEW_TOKENS": (1, 8192, "ふつうは 32〜256"),
    "VALIDATION_RATIO": (0.01, 0.9, "ふつうは 0.1〜0.2"),
    "GENERAL_ROWS": (0, 30, "ふつうは 0〜20"),  # of the 35 in datasets/general_qa_ja.csv: 04 asks the rest
    "SEED": (0, 2**32 - 1, "どの値でも、同じ値なら同じ結果"),
    "ROW_LIMIT": (0, 10**9, "0 ならすべての行"),
    "TRAIN_SIZE": (1, 10**6, "ふつうは 1000〜5000"),
    "TEST_SIZE": (1, 10**6, "ふつうは 100〜500"),
    "DECIMAL_PLACES": (0, 6, "0 なら整数"),
    "ROUND_PLACES": (0, 6, "ふつうは 1〜2"),
    "TEMPERATURE": (0.01, 5.0, "ふつうは 0.3〜1.0"),
    "TOP_P": (0.01, 1.0, "ふつうは 0.8〜0.95"),
    "REPETITION_PENALTY": (0.5, 3.0, "ふつうは 1.0〜1.3"),
    "NUM_BEAMS": (1, 16, "ふつうは 1〜4"),
    "EVAL_ROWS": (1, 10**6, "ふつうは 20〜200"),
    "TOLERANCE": (0.0, 1e12, "0 なら完全に一致したときだけ正解"),
    "TOP_K": (1, 50, "ふつうは 3〜5"),
    "GENERAL_TASKS": (0, 100, "0 なら測りません。ふつうは 5〜20"),
}


def _cast(name: str, text: str, like):
    """An override's text as the field's type (numeric fields by their `RANGES` kind: `1e-3`, `3.0` read)."""
    if isinstance(like, bool):
        return text.strip().lower() in ("1", "true", "yes", "on")
    if name in RANGES or isinstance(like, (int, float)):
        number = float(text)
        whole = name in RANGES and all(isinstance(bound, int) for bound in RANGES[name][:2])
        return int(number) if (whole or (name not in RANGES and isinstance(like, int))) and number.is_integer() else number
    return text


def problem(name: str, value) -> str | None:
    """What is wrong with a numeric form value, in Japanese (None when it is fine or not numeric)."""
    if name not in RANGES or value in (FROM_01, FROM_02):
        return None
    low, high, usual = RANGES[name]
    whole = isinstance(low, int) and isinstance(high, int)
    kind = "整数" if whole else "数"
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)) or value != value:
        return f"{name} = {value!r} は{kind}ではありません。{low}〜{high} の{kind}にしてください ({usual})。"
    if not low <= value <= high:
        return f"{name} = {value!r} は範囲の外です。{low}〜{high} にしてください ({usual})。"
    return None


def collect(**values) -> SimpleNamespace:
    """Return the form values, each replaced by `TUTORIAL_<NAME>` when that variable is set, after
    checking every numeric one against `RANGES` (all problems at once, in Japanese)."""
    problems = []
    for name, value in values.items():
        if PREFIX + name in os.environ:
            try:
                values[name] = _cast(name, os.environ[PREFIX + name], value)
            except ValueError:
                values[name] = os.environ[PREFIX + name]  # reported below as not a number
                problems.append(f"(環境変数 {PREFIX}{name} から) " + (problem(name, values[name]) or
                                                                   f"{name} = {values[name]!r} は数ではありません。"))
                continue
            print(f"{name} = {values[name]!r}  (環境変数 {PREFIX}{name} による上書き)")
        elif name in TYPED_CHOICES and isinstance(values[name], str) and values[name] not in (FROM_01, FROM_02):
            try:  # a dropdown that takes typed input gives text: "512"
                values[name] = _cast(name, values[name], values[name])
            except ValueError:
                pass  # reported below as not a number
        problems.append(problem(name, values[name]))
    problems = [p for p in problems if p]
    if problems:
        raise TutorialError("フォームの値を直してから、このセルをもう一度実行してください:\n" + "\n".join(f"- {p}" for p in problems))
    return SimpleNamespace(**values)


def inherit(settings: SimpleNamespace, recorded: dict, notebook: str, defaults: dict) -> SimpleNamespace:
    """Fill each field left as "`notebook` と同じ" with what that notebook recorded (its default when it
    has not run), saying which; a form value that differs from the recorded one is kept, and said so."""
    for name, default in defaults.items():
        current, value = getattr(settings, name, None), recorded.get(name, default)
        if current == f"{notebook} と同じ":
            setattr(settings, name, value)
            print(f"{name} = {value!r}  ({notebook} で決めた値)" if name in recorded else
                  f"{name} = {value!r}  ({notebook} を実行していないので、{notebook} の既定値)")
        elif name in recorded and current is not None and current != value:
            print(f"{name}: {notebook} では {value!r} でしたが、このノートブックの {current!r} を使います。")
    return settings
