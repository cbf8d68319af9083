"""Numbers in answers, numeric scores, arithmetic breakdowns and which checkpoint to keep."""
from __future__ import annotations

import math
import re
import unicodedata

import pandas as pd

from .scores import LABELS

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_MINUS = re.compile(r"(?:マイナス|[\u2212\u2012\u2013\u2014\u30fc])(?=\d)")  # minus signs people type


def parse_number(text: str) -> float | None:
    """The number an answer gives: "8", "8.0", "答えは8です", "5 + 3 = 8", "８", "−3", "1,234.5".

    The part after the last "=" (or the last "は") is read, so an echoed question is skipped.
    """
    text = unicodedata.normalize("NFKC", str(text))
    text = _MINUS.sub("-", text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    for marker in ("=", "は"):
        if marker in text and _NUMBER.search(text.rsplit(marker, 1)[1]):
            text = text.rsplit(marker, 1)[1]
            break
    match = _NUMBER.search(text)
    return float(match.group()) if match else None


def numeric_scores(predicted, truth, tolerance: float = 0.0) -> dict:
    """MAE, RMSLE (on values ≥ 0) and the share within `tolerance` (absolute), over parsed values."""
    pairs = [(p, t) for p, t in zip(predicted, truth) if p is not None and t is not None]
    if not pairs:
        return {"rows": len(list(truth)), "parsed": 0, "mae": None, "rmsle": None, "hit_rate": 0.0}
    errors = [abs(p - t) for p, t in pairs]
    positive = [(p, t) for p, t in pairs if p >= 0 and t >= 0]
    rmsle = math.sqrt(sum((math.log1p(p) - math.log1p(t)) ** 2 for p, t in positive) / len(positive)) if positive else None
    return {"rows": len(predicted), "parsed": len(pairs), "mae": sum(errors) / len(errors), "rmsle": rmsle,
            "hit_rate": sum(e <= tolerance + 1e-9 for e in errors) / len(predicted)}


def numeric_table(questions, truth, predictions: dict[str, list], tolerance: float = 0.0) -> pd.DataFrame:
    """One row per question: true value, and per method the prediction and its absolute error."""
    table = pd.DataFrame({"question": list(questions), "truth": list(truth)})
    for method, values in predictions.items():
        table[method] = values
        table[f"{method}_error"] = [abs(v - t) if v is not None and t is not None else None
                                    for v, t in zip(values, table["truth"])]
    return table


def colour_errors(table: pd.DataFrame, tolerance: float = 0.0):
    """Green within tolerance, orange within 10× the tolerance (or 10% of the truth), red beyond."""
    def colour(value, truth):
        if value is None or pd.isna(value):
            return "background-color: #fbd5d5"
        near = max(10 * tolerance, 0.1 * abs(truth))
        return ("background-color: #d4f7d4" if value <= tolerance + 1e-9 else
                "background-color: #ffe9b3" if value <= near else "background-color: #fbd5d5")
    error_columns = [c for c in table.columns if c.endswith("_error")]
    return table.style.apply(lambda row: [colour(row[c], row["truth"]) if c in error_columns else ""
                                          for c in row.index], axis=1).relabel_index(
        [LABELS.get(c, c) for c in table.columns], axis=1).format("{:.6g}", subset=table.select_dtypes("number").columns)


def digits_label(a: float, b: float) -> str:
    widths = sorted({len(str(int(abs(a)))), len(str(int(abs(b))))})
    return "と".join(f"{w}桁" for w in widths)


def arithmetic_breakdown(table: pd.DataFrame) -> pd.DataFrame:
    """Accuracy before/after by operation and digit mix, for rows whose question is a problem."""
    from .arithmetic import parse_question
    parsed = table["question"].map(parse_question)
    rows = table[parsed.notna()].copy()
    if rows.empty:
        return pd.DataFrame()
    rows["演算"] = [p[1] for p in parsed.dropna()]
    rows["桁数"] = [digits_label(p[0], p[2]) for p in parsed.dropna()]
    for when in ("before", "after"):
        rows[f"{when}_ok"] = [parse_number(a) is not None and abs(parse_number(a) - parse_number(e)) < 1e-9
                              for a, e in zip(rows[when], rows["expected"])]
    return rows.groupby(["演算", "桁数"]).agg(問題数=("question", "size"), 学習前=("before_ok", "mean"),
                                           学習後=("after_ok", "mean")).round(3)


def recommend_checkpoint(per_epoch: pd.DataFrame, score: str = "exact_match", loss: str = "validation_loss") -> int:
    """The epoch to keep: the best validation score, ties broken by the lower validation loss,
    then the earlier epoch (before overfitting sets in)."""
    ranked = per_epoch.reset_index().sort_values([score, loss, "epoch"], ascending=[False, True, True])
    return int(ranked.iloc[0]["epoch"])
