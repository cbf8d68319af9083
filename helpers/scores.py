"""Scores for Japanese answers and the before/after comparison table."""
from __future__ import annotations

import re
import unicodedata
from collections import Counter

import pandas as pd

def normalize(text: str) -> str:
    """NFKC, no whitespace, no punctuation: 「２４６８メートルです。」 == "2468メートルです"."""
    text = unicodedata.normalize("NFKC", str(text))
    return "".join(c for c in text if not c.isspace() and not unicodedata.category(c).startswith("P"))


def exact_match(prediction: str, reference: str) -> bool:
    return normalize(prediction) == normalize(reference)


def char_f1(prediction: str, reference: str) -> float:
    """F1 of the characters the two share (order ignored): partial credit for near misses."""
    pred, ref = Counter(normalize(prediction)), Counter(normalize(reference))
    common = sum((pred & ref).values())
    if not common:
        return float(pred == ref)
    precision, recall = common / sum(pred.values()), common / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def leaked(answer: str, trained_answers: list[str]) -> str:
    """The trained answer that appears in `answer`, or "" (for questions outside the data).

    Numeric answers ("13") are compared as numbers, so "3776メートル" does not contain a "7".
    """
    from .evaluate import parse_number
    text, number = normalize(answer), parse_number(answer)
    for trained in trained_answers:
        value = normalize(trained)
        if re.fullmatch(r"-?\d+(\.\d+)?", value):
            if number is not None and float(value) == number:
                return trained
        elif value and value in text:
            return trained
    return ""


def comparison(split: str, questions, expected, before, after, trained_answers) -> pd.DataFrame:
    """One row per question: answers before and after tuning, and whether each is right."""
    table = pd.DataFrame({"split": split, "question": list(questions), "expected": list(expected),
                          "before": list(before), "after": list(after)})
    for when in ("before", "after"):
        table[f"{when}_correct"] = [exact_match(p, r) for p, r in zip(table[when], table["expected"])]
        table[f"{when}_char_f1"] = [round(char_f1(p, r), 3) for p, r in zip(table[when], table["expected"])]
    table["after_leaked"] = [leaked(a, trained_answers) if split == "control" else ""
                             for a in table["after"]]
    return table


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per split: rows, exact match and character F1 before/after, distinct answers, leaks."""
    grouped = table.groupby("split", sort=False)
    return pd.DataFrame({
        "rows": grouped.size(),
        "exact_match_before": grouped["before_correct"].mean().round(3),
        "exact_match_after": grouped["after_correct"].mean().round(3),
        "char_f1_before": grouped["before_char_f1"].mean().round(3),
        "char_f1_after": grouped["after_char_f1"].mean().round(3),
        "distinct_after_answers": grouped["after"].nunique(),
        "leaked_trained_answers": grouped["after_leaked"].apply(lambda s: int((s != "").sum())),
    })


def headline(table: pd.DataFrame) -> str:
    """The numbers `make demo` prints."""
    lines = ["split      rows  exact match before → after   char F1 before → after   leaks"]
    for split, row in summary(table).iterrows():
        lines.append(f"{split:<9} {int(row['rows']):>5}  {row['exact_match_before']:>8.0%} → {row['exact_match_after']:<8.0%}"
                     f"          {row['char_f1_before']:.2f} → {row['char_f1_after']:.2f}"
                     f"            {int(row['leaked_trained_answers'])}")
    return "\n".join(lines)


def highlight(table: pd.DataFrame):
    """Styled table: right answers green, wrong red, a trained answer leaking into a control orange."""
    def colour(row):
        styles = dict.fromkeys(row.index, "")
        for when in ("before", "after"):
            styles[when] = "background-color: #d4f7d4" if row[f"{when}_correct"] else "background-color: #fbd5d5"
        if row["after_leaked"]:
            styles["after"] = "background-color: #ffd59a"
        return list(styles.values())
    return table.style.apply(colour, axis=1)
