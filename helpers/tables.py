"""The comparison tables, shown in Japanese: before/after answers, summaries, styles, numbers.

The CSV files keep short English column names (for code); `japanese`, `highlight` and
`colour_errors` show them with Japanese headings, percentages and colours."""
from __future__ import annotations

import pandas as pd

from .scores import char_f1, exact_match, leaked, normalize

# What readers see for the column, index and split names of the tables.
LABELS = {
    "split": "区分", "question": "質問", "expected": "正解", "before": "学習前の答え", "after": "学習後の答え",
    "before_correct": "学習前 ○×", "after_correct": "学習後 ○×", "before_char_f1": "文字 F1 (学習前)",
    "after_char_f1": "文字 F1 (学習後)", "after_leaked": "紛れ込んだ学習の答え",
    "rows": "問題数", "exact_match_before": "完全一致 (学習前)", "exact_match_after": "完全一致 (学習後)",
    "char_f1_before": "文字 F1 (学習前)", "char_f1_after": "文字 F1 (学習後)",
    "distinct_after_answers": "学習後の答えの種類", "leaked_trained_answers": "紛れ込み",
    "perplexity_before": "perplexity (学習前)", "perplexity_after": "perplexity (学習後)",
    "epoch": "エポック", "exact_match": "完全一致", "validation_loss": "検証用の損失",
    "leak_rate": "一般的な質問への紛れ込み", "general_perplexity": "一般的な文章の perplexity",
    "general_text": "一般的な文章",
    "parsed": "数を読めた答え", "mae": "平均の誤差 (MAE)", "rmsle": "対数の誤差 (RMSLE)", "hit_rate": "許容誤差内の割合",
    "truth": "正解の値", "greedy": "学習後 (greedy)", "top_k": "学習後 (top-k 重み付き)",
    "before_error": "誤差 (学習前)", "greedy_error": "誤差 (greedy)", "top_k_error": "誤差 (top-k)",
    "style_before": "口調の割合 (学習前)", "style_after": "口調の割合 (学習後)",
    "content_before": "中身が正しい (学習前)", "content_after": "中身が正しい (学習後)",
    "answer": "答え", "model": "モデル", "count": "行数", "mean": "平均", "std": "標準偏差", "min": "最小",
    "50%": "中央値", "max": "最大",
    "train": "学習に使った質問", "heldout": "学習に使わなかった質問", "control": "データと関係ない一般的な質問",
    "task": "問", "input": "課題", "reference": "模範解答", "judge_before": "採点 (学習前)", "judge_after": "採点 (学習後)",
}
RATES = {"exact_match_before", "exact_match_after", "exact_match", "leak_rate", "hit_rate", "学習前", "学習後",
         "style_before", "style_after", "content_before", "content_after"}


GREEN, ORANGE, RED = (f"background-color: {c}" for c in ("#d4f7d4", "#ffe9b3", "#fbd5d5"))


def japanese(frame: pd.DataFrame):
    """`frame` with Japanese headings and split names, rates as percentages (a Styler, for display and report.html)."""
    shown = frame.rename(index=LABELS, columns=LABELS)
    shown.index.names = [LABELS.get(name, name) for name in frame.index.names]  # one level or several
    rates = [LABELS.get(c, c) for c in frame.columns if c in RATES]
    numbers = [LABELS.get(c, c) for c in frame.select_dtypes("float").columns if c not in RATES]
    return shown.style.format("{:.0%}", subset=rates, na_rep="-").format("{:.3g}", subset=numbers, na_rep="-")


def comparison(split: str, questions, expected, before, after, trained_answers) -> pd.DataFrame:
    """One row per question: answers before and after tuning, and whether each is right."""
    table = pd.DataFrame({"split": split, "question": list(questions), "expected": list(expected),
                          "before": list(before), "after": list(after)})
    for when in ("before", "after"):
        table[f"{when}_correct"] = [exact_match(p, r) for p, r in zip(table[when], table["expected"])]
        table[f"{when}_char_f1"] = [round(char_f1(p, r), 3) for p, r in zip(table[when], table["expected"])]
    table["after_leaked"] = [leaked(a, trained_answers, e, q) if split == "control" else ""
                             for a, e, q in zip(table["after"], table["expected"], table["question"])]
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


def style_scores(table: pd.DataFrame, ending: str) -> pd.DataFrame:
    """Per split: the share of answers in the style (ending with `ending`) and of answers whose content
    (the expected answer without the style ending) is still there, before and after tuning."""
    rows = table.assign(**{f"{when}_{what}": [check(a, e) for a, e in zip(table[when], table["expected"])]
                           for when in ("before", "after")
                           for what, check in (("style", lambda a, e: str(a).strip().endswith(ending)),
                                               ("content", lambda a, e: normalize(str(e).strip().removesuffix(ending))
                                                in normalize(a)))})
    grouped = rows.groupby("split", sort=False)
    return pd.DataFrame({"rows": grouped.size()} | {
        f"{what}_{when}": grouped[f"{when}_{what}"].mean().round(3)
        for what in ("style", "content") for when in ("before", "after")})


def headline(table: pd.DataFrame) -> str:
    """The numbers `make demo` prints: per split, exact match and character F1 before → after; leaks (control)."""
    lines = []
    for split, row in summary(table).iterrows():
        lines.append(f"{LABELS.get(split, split)} ({split}) {int(row['rows'])} 問: "
                     f"完全一致 {row['exact_match_before']:.0%} → {row['exact_match_after']:.0%}、"
                     f"文字 F1 {row['char_f1_before']:.2f} → {row['char_f1_after']:.2f}"
                     + (f"、紛れ込み {int(row['leaked_trained_answers'])}" if split == "control" else ""))
    return "\n".join(lines)


def highlight(table: pd.DataFrame):
    """The before and after answers side by side, in Japanese: right answers green (○), wrong red (×),
    a trained answer leaking into a general question orange."""
    shown = table[["split", "question", "expected", "before", "after"]].assign(
        before_correct=table["before_correct"].map({True: "○", False: "×"}),
        after_correct=table["after_correct"].map({True: "○", False: "×"}),
        after_leaked=table["after_leaked"], split=table["split"].map(lambda s: LABELS.get(s, s)))

    def colour(row):
        styles = dict.fromkeys(row.index, "")
        for when in ("before", "after"):
            styles[when] = GREEN if row[f"{when}_correct"] == "○" else RED
        if row["after_leaked"]:
            styles["after"] = ORANGE
        return list(styles.values())
    return shown.style.apply(colour, axis=1).relabel_index([LABELS[c] for c in shown.columns], axis=1).hide(axis="index")


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
            return RED
        near = max(10 * tolerance, 0.1 * abs(truth))
        return GREEN if value <= tolerance + 1e-9 else ORANGE if value <= near else RED
    error_columns = [c for c in table.columns if c.endswith("_error")]
    return table.style.apply(lambda row: [colour(row[c], row["truth"]) if c in error_columns else ""
                                          for c in row.index], axis=1).relabel_index(
        [LABELS.get(c, c) for c in table.columns], axis=1).format("{:.6g}", subset=table.select_dtypes("number").columns)


