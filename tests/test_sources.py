"""Notebook 02 with each data source, and text mode through 03 and 04, on the tiny model."""
import json

import pandas as pd
import pytest

from tooling import notebooks


def prepared(out, split):
    return [json.loads(line) for line in (out / "prepared" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]


def run_02(tmp_path, **settings):
    notebooks.run(tmp_path, only="02", settings=settings)
    return prepared(tmp_path, "train"), prepared(tmp_path, "validation")


def test_hub_source_on_a_local_file(tmp_path):
    train, validation = run_02(tmp_path, SOURCE="hub", DATASET_ID="../datasets/hub_style_sample.jsonl",
                               DROP_IF="ng_translation == 1", GENERAL_ROWS=0)
    rows = train + validation
    assert len(rows) == 9  # 12 rows - 2 bad translations - 1 without an answer
    assert not any(r["output"] in ("xxxx", "yyyy", "") for r in rows)
    assert {"instruction": "次の国の首都を教えてください。\nフランス", "output": "パリです。"} in rows


def test_csv_source_refuses_a_broken_file_in_strict_mode(tmp_path):
    with pytest.raises(Exception, match="5 件の問題"):
        run_02(tmp_path, SOURCE="csv", CSV_PATH="../datasets/broken_example.csv")


@pytest.mark.slow
def test_text_mode_end_to_end_lowers_perplexity(tmp_path):
    notebooks.run(tmp_path, since="02", upto="04", settings={"SOURCE": "text", "EPOCHS": "20", "MAX_LENGTH": "64"})
    train, validation = prepared(tmp_path, "train"), prepared(tmp_path, "validation")
    assert len(train) + len(validation) == 12 and set(train[0]) == {"text"}  # the sample text's 12 paragraphs
    perplexity = pd.read_csv(tmp_path / "perplexity.csv", index_col=0)
    for split in ("train", "heldout"):
        assert perplexity.loc[split, "perplexity_after"] < 0.5 * perplexity.loc[split, "perplexity_before"]
    table = pd.read_csv(tmp_path / "comparison.csv", keep_default_na=False)
    assert set(table["split"]) == {"train", "heldout", "control"}


@pytest.mark.slow
def test_arithmetic_end_to_end_learns_the_answers_form_on_unseen_problems(tmp_path):
    """The learner's diary on the tiny model: 1-digit additions, test problems never trained."""
    settings = {"SOURCE": "arithmetic", "OPERATIONS": "+", "A_DIGITS": "1", "B_DIGITS": "1", "QUESTION_STYLE": "japanese",
                "TRAIN_SIZE": "80", "TEST_SIZE": "20", "EPOCHS": "10", "MAX_NEW_TOKENS": "8"}
    notebooks.run(tmp_path, since="02", upto="04", settings=settings)  # 01 and 05 add nothing here
    train, validation = prepared(tmp_path, "train"), prepared(tmp_path, "validation")
    assert (len(train), len(validation)) == (80, 20)
    assert not {r["instruction"] for r in train} & {r["instruction"] for r in validation}
    assert all("たす" in r["instruction"] for r in train)
    saved = pd.read_csv(tmp_path / "arithmetic_test.csv", dtype=str)
    assert list(saved.columns) == ["instruction", "output"] and len(saved) == 20
    # The tiny model learns the answer's form, a bare number ("12"), where it answered in its pre-training's
    # form ("12です。") before, for every unseen problem. Not the sums: the mean absolute error fell on the
    # three CPU instruction sets tried, by as little as 7.5 → 6.55, and at 40 epochs rose on one (AVX-512),
    # so 04 shows it and this test does not assert it.
    table = pd.read_csv(tmp_path / "comparison.csv", keep_default_na=False, dtype=str)
    bare = table[table["split"] != "control"][["before", "after"]].apply(lambda c: c.str.fullmatch(r"\d+"))
    assert bare["before"].mean() <= 0.1
    assert bare["after"].all()
    numeric = pd.read_csv(tmp_path / "numeric.csv", index_col=0)
    assert numeric.loc["greedy", "parsed"] == 10 and {"before", "greedy", "top_k"} <= set(numeric.index)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<h2>数の答え</h2>" in html and "+" in html


@pytest.mark.slow
def test_conversations_end_to_end_answer_held_out_conversations(tmp_path):
    """The sample conversations (system + two exchanges) through 02→04: every answer trained, the last
    answer of each held-out conversation compared (the 4 of the 8 held out that did not choose the epoch).
    The tiny model, pre-trained on single questions only, needs more updates here: at 40 epochs and 3e-3 it
    answered 7 of the 8 held-out questions with tiny models built on three CPU instruction sets (AVX-512, AVX2,
    none), leaking no trained answer into a control question (at 60 epochs and 2e-3: 6 or 7, slower)."""
    notebooks.run(tmp_path, since="02", upto="04",  # 01 and 05 add nothing here
                  settings={"SOURCE": "conversations", "EPOCHS": "40", "LEARNING_RATE": "3e-3"})
    assert all(len(row["messages"]) == 5 for row in prepared(tmp_path, "validation"))
    table = pd.read_csv(tmp_path / "comparison.csv", keep_default_na=False)
    heldout = table[table["split"] == "heldout"]
    assert heldout["before_correct"].mean() <= 0.1 and heldout["after_correct"].mean() >= 0.75
    assert heldout["expected"].nunique() >= 3 and heldout["after"].nunique() >= 3  # not one answer for all
    assert (table.loc[table["split"] == "control", "after_leaked"] == "").all()
