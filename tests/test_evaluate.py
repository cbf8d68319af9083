"""Scores for Japanese answers, the number parser, numeric evaluation, checkpoint choice,
the top-k weighted prediction, the report and the question loop."""
import math

import pandas as pd
import pytest

from helpers import arithmetic, chat, checkpoints, report, scores, tables
from helpers.arithmetic import parse_question


@pytest.mark.parametrize("a, b", [("東京です。", "東京です"), ("東京、です！", "東京です"), ("Ｔｏｋｙｏ です", "Tokyoです"),
                                  (" 2468 メートル です。", "２４６８メートルです")])
def test_normalised_exact_match(a, b):
    assert scores.exact_match(a, b)


@pytest.mark.parametrize("text, value", [
    ("8", 8), ("8.0", 8), ("答えは8です", 8), ("5 + 3 = 8", 8), ("５＋３＝８", 8), ("８", 8), ("-3", -3), ("−3", -3),
    ("マイナス3です", -3), ("3.5", 3.5), ("３．５", 3.5), ("1,234.5", 1234.5), ("5+3は8です。", 8),
    ("12たす7は19です。", 19), ("答え: -0.25", -0.25), ("2468メートルです。", 2468), ("わかりません", None), ("", None)])
def test_parse_number(text, value):
    assert scores.parse_number(text) == value


def test_numeric_scores_on_known_values():
    result = scores.numeric_scores([10.0, 12.0, None, 0.0], [10.0, 10.0, 5.0, 1.0], tolerance=1.0)
    assert result["rows"] == 4 and result["parsed"] == 3
    assert result["mae"] == pytest.approx((0 + 2 + 1) / 3)
    assert result["rmsle"] == pytest.approx(math.sqrt(((math.log(13) - math.log(11)) ** 2 + math.log(2) ** 2) / 3))
    assert result["hit_rate"] == pytest.approx(2 / 4)  # 10 and 0 (within 1); the unparsed row counts as a miss


def test_numeric_table_and_colours():
    table = tables.numeric_table(["q1", "q2", "q3"], [100.0, 100.0, 100.0], {"greedy": [100.0, 105.0, None]})
    assert list(table["greedy_error"][:2]) == [0.0, 5.0] and table["greedy_error"].isna().iloc[2]
    html = tables.colour_errors(table, tolerance=0.0).to_html()
    assert html.count("#d4f7d4") == 1 and html.count("#ffe9b3") == 1 and html.count("#fbd5d5") == 1


def test_arithmetic_breakdown_by_operation_and_digits():
    table = pd.DataFrame({"question": ["3 + 4 =", "12 + 5 =", "6 × 7 =", "日本の首都は？"],
                          "expected": ["7", "17", "42", "東京です。"],
                          "before": ["8", "答えは17です", "7", "パリ"], "after": ["7", "17", "42", "東京です。"]})
    breakdown = arithmetic.breakdown(table)
    assert breakdown.loc[("+", "1桁"), "学習前"] == 0 and breakdown.loc[("+", "1桁と2桁"), "学習前"] == 1
    assert breakdown["学習後"].eq(1).all() and breakdown["問題数"].sum() == 3
    assert parse_question("12たす(-7)は？") == (12.0, "+", -7.0) and parse_question("日本の首都は？") is None


def test_recommended_checkpoint_is_before_overfitting():
    curve = pd.DataFrame({"epoch": range(1, 9), "exact_match": [0, .2, .6, .9, .9, .9, .7, .6], "leak_rate": 0.0,
                          "general_perplexity": 10.0,
                          "validation_loss": [3, 2, 1.2, 0.9, 0.8, 0.85, 1.1, 1.4]}).set_index("epoch")
    assert checkpoints.recommended(curve) == 5  # best score, lowest loss among those
    flat = curve.assign(validation_loss=1.0)
    assert checkpoints.recommended(flat) == 4   # a tie: the earliest
    leaking = curve.assign(leak_rate=[0, 0, 0, .1, .2, .3, .3, .3])  # trained answers given to general questions
    assert checkpoints.recommended(leaking) == 4  # .9 - .1 beats .9 - .2: the right answers, with the fewest leaks
    assert checkpoints.recommended(curve.assign(leak_rate=[0, 0, 0, .4, .4, .4, .4, .4])) == 3  # .6 beats .5
    harmed = curve.assign(general_perplexity=[10, 12, 14, 20, 40, 80, 90, 99])  # general text ever more perplexing
    assert checkpoints.recommended(harmed) == 4  # the same score as 5 and 6, with the least harm done


def test_top_k_weighted_number_on_the_tiny_model(tiny_model, tiny_tokenizer):
    from helpers.generation import answer, weighted_number
    questions = ["富士山の高さは何メートルですか？", "エベレストの標高は？", "日本の首都はどこですか？"]
    weighted = weighted_number(tiny_model, tiny_tokenizer, questions, k=3)
    greedy = [scores.parse_number(a) for a in answer(tiny_model, tiny_tokenizer, questions)]
    assert greedy[:2] == [3776, 8849]
    assert weighted[0] == pytest.approx(3776, rel=0.01) and weighted[1] == pytest.approx(8849, rel=0.01)
    assert weighted[2] is None  # no candidate answer contains a number
    single = weighted_number(tiny_model, tiny_tokenizer, questions[:1], k=1)
    assert single == [3776]  # k=1 is the greedy answer


def test_answer_perplexity_prefers_the_right_answer(tiny_model, tiny_tokenizer):
    from helpers.generation import answer_perplexity
    right = answer_perplexity(tiny_model, tiny_tokenizer, ["日本の首都はどこですか？"], ["東京です。"])
    wrong = answer_perplexity(tiny_model, tiny_tokenizer, ["日本の首都はどこですか？"], ["パリです。"])
    assert 1 <= right < 2 < 50 < wrong


def test_report_is_self_contained(tmp_path):
    import matplotlib.pyplot as plt
    image = tmp_path / "plot.png"
    plt.figure().savefig(image)
    table = pd.DataFrame({"question": ["<b>質問</b>"], "after": ["答え"]})
    path = report.write(tmp_path / "report.html", "比較 & 結果", {
        "まとめ": ["説明の文", table], "グラフ": [image], "色付き": [table.style.highlight_max(axis=0)]})
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and '<meta charset="utf-8">' in html
    assert "<h1>比較 &amp; 結果</h1>" in html and "<h2>グラフ</h2>" in html
    assert "data:image/png;base64," in html and "src=\"plot.png\"" not in html
    assert "&lt;b&gt;質問&lt;/b&gt;" in html and html.count("<table") == 2


def test_question_loop_shows_both_answers_and_stops_on_exit_word(tiny_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_path),
                           LoraConfig(r=2, target_modules="all-linear", task_type="CAUSAL_LM"))
    typed, shown = iter(["日本の首都はどこですか？", "終了", "not reached"]), []
    chat.loop(model, tokenizer, ask=lambda prompt: next(typed), show=shown.append, max_new_tokens=8)
    assert "学習前: 東京です。\n学習後: 東京です。" in shown and shown[-1] == "終了します。"
    assert next(typed) == "not reached"
