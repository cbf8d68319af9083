"""Arithmetic problems as instruction/output rows, like the learner's "1 + 1 =" data set.

Exact answers come from `decimal.Decimal`, so "0.1 + 0.2" is "0.3". Train and test problems
never overlap: every problem is generated once and then dealt to one side.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd

from .errors import TutorialError
from .scores import parse_number

OPERATIONS = {"+": ("+", "たす"), "-": ("-", "ひく"), "×": ("×", "かける"), "÷": ("÷", "わる")}


@dataclass
class Spec:
    operations: str = "+-×÷"      # any of + - × ÷
    a_digits: str = "1-2"         # "1", "2", "1-2" (mixed) ...
    b_digits: str = "1-2"
    negatives: bool = False
    decimal_places: int = 0       # 0: integers only
    division: str = "exact"       # "exact": only problems that divide evenly; "round": round the answer
    round_places: int = 2
    style: str = "symbolic"       # "symbolic": 12 + 7 =   "japanese": 12たす7は？


def _digit_range(text: str) -> tuple[int, int]:
    try:
        low, _, high = text.partition("-")
        low, high = int(low), int(high or low)
    except ValueError as exc:
        raise TutorialError(f"桁数「{text}」を読めません。「1」「2」「1-2」のように書いてください。") from exc
    if not 1 <= low <= high <= 9:
        raise TutorialError(f"桁数「{text}」は 1〜9 の範囲で、小さい方から書いてください。")
    return low, high


def _operand(rng: random.Random, digits: tuple[int, int], spec: Spec) -> Decimal:
    width = rng.randint(*digits)
    value = Decimal(rng.randint(0 if width == 1 else 10 ** (width - 1), 10 ** width - 1))
    if spec.decimal_places:
        value += Decimal(rng.randint(0, 10 ** spec.decimal_places - 1)).scaleb(-spec.decimal_places)
    return -value if spec.negatives and rng.random() < 0.5 else value


def _fits(value: Decimal, digits: tuple[int, int], spec: Spec) -> bool:
    width = len(str(int(abs(value))))
    places = Decimal(1).scaleb(-spec.decimal_places)
    return digits[0] <= width <= digits[1] and value == value.quantize(places) and (spec.negatives or value >= 0)


def fmt(value: Decimal) -> str:
    """12, -3.5, 0.25: no exponent, no trailing zeros, no "-0"."""
    text = format(value.normalize(), "f") if value != value.to_integral() else str(int(value))
    return "0" if text in ("-0", "0") else text


def _answer(a: Decimal, op: str, b: Decimal, spec: Spec) -> Decimal | None:
    if op == "÷":
        if b == 0:
            return None
        quotient = a / b
        if spec.division == "exact":  # divides evenly: no more decimal places than the operands
            places = Decimal(1).scaleb(-spec.decimal_places)
            return quotient if b * quotient.quantize(places, rounding=ROUND_HALF_UP) == a else None
        return quotient.quantize(Decimal(1).scaleb(-spec.round_places), rounding=ROUND_HALF_UP)
    return {"+": a + b, "-": a - b, "×": a * b}[op]


def question(a: Decimal, op: str, b: Decimal, style: str) -> str:
    symbol, word = OPERATIONS[op]
    right = f"({fmt(b)})" if b < 0 else fmt(b)
    return f"{fmt(a)} {symbol} {right} =" if style == "symbolic" else f"{fmt(a)}{word}{right}は？"


_OPERAND = r"\(?(-?\d+(?:\.\d+)?)\)?"
_QUESTION = re.compile(rf"^{_OPERAND}\s*([+\-×÷]|たす|ひく|かける|わる)\s*{_OPERAND}\s*(?:=|は？)$")
_WORDS = {word: op for op, (_, word) in OPERATIONS.items()}


def parse_question(text: str) -> tuple[float, str, float] | None:
    """(a, operation, b) of a generated problem ("12 + 7 =" or "12たす7は？"), else None."""
    match = _QUESTION.match(str(text).strip())
    if not match:
        return None
    a, op, b = match.groups()
    return float(a), _WORDS.get(op, op), float(b)


def generate(train_size: int, test_size: int, spec: Spec, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Distinct problems, dealt to train and test; each row has instruction, output, op, a, b."""
    unknown = set(spec.operations) - set(OPERATIONS)
    if unknown or not spec.operations:
        raise TutorialError(f"演算「{''.join(unknown) or '(なし)'}」は使えません。+ - × ÷ から選んでください。")
    digits = _digit_range(spec.a_digits), _digit_range(spec.b_digits)
    rng, rows, seen, wanted = random.Random(seed), [], set(), train_size + test_size
    attempts = 0
    while len(rows) < wanted:
        attempts += 1
        if attempts > 50 * wanted + 10_000:
            raise TutorialError(f"条件に合う問題が {len(rows)} 問しか作れません (必要 {wanted} 問)。"
                                "桁数を増やす、演算を増やす、割り算を「round」にする、問題数を減らす、のどれかを試してください。")
        op = rng.choice(spec.operations)
        a, b = _operand(rng, digits[0], spec), _operand(rng, digits[1], spec)
        if op == "÷" and spec.division == "exact" and b:  # nearest multiple: any divisor, not mostly ÷1
            a = b * (a / b).quantize(Decimal(1).scaleb(-spec.decimal_places), rounding=ROUND_HALF_UP)
            if not _fits(a, digits[0], spec):
                continue
        answer = _answer(a, op, b, spec)
        text = question(a, op, b, spec.style)
        if answer is None or text in seen:
            continue
        seen.add(text)
        rows.append({"instruction": text, "output": fmt(answer), "op": op, "a": fmt(a), "b": fmt(b)})
    return rows[:train_size], rows[train_size:]


def _digits(a: float, b: float) -> str:
    widths = sorted({len(str(int(abs(a)))), len(str(int(abs(b))))})
    return "と".join(f"{w}桁" for w in widths)


def breakdown(table: pd.DataFrame) -> pd.DataFrame:
    """Accuracy before/after by operation and digit mix, for rows whose question is a problem."""
    parsed = table["question"].map(parse_question)
    rows = table[parsed.notna()].copy()
    if rows.empty:
        return pd.DataFrame()
    rows["演算"] = [p[1] for p in parsed.dropna()]
    rows["桁数"] = [_digits(p[0], p[2]) for p in parsed.dropna()]
    for when in ("before", "after"):
        rows[f"{when}_ok"] = [parse_number(a) is not None and abs(parse_number(a) - parse_number(e)) < 1e-9
                              for a, e in zip(rows[when], rows["expected"])]
    return rows.groupby(["演算", "桁数"]).agg(問題数=("question", "size"), 学習前=("before_ok", "mean"),
                                           学習後=("after_ok", "mean")).round(3)
