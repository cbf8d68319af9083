import pandas as pd
import pytest

from helpers import scores, tables

pytestmark = pytest.mark.unit  # offline, quick, nothing built or fetched (make test-unit)


def test_normalize_width_space_and_trailing_punctuation():
    assert scores.normalize(" ２４６８ メートルです。") == "2468メートルです"
    assert scores.exact_match("ソラリスです", "ソラリスです。")
    assert not scores.exact_match("ソラリスです。", "ミルテです。")


def test_char_f1():
    assert scores.char_f1("東京です。", "東京です。") == 1.0
    assert scores.char_f1("パリ", "東京") == 0.0
    # "東京だ" vs "東京です": 2 shared of 3 and 4 chars → P=2/3, R=1/2
    assert scores.char_f1("東京だ", "東京です") == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_leaked_finds_trained_answer_inside():
    trained = ["ソラリスです。", "2468メートルです。"]
    assert scores.leaked("たぶん2468メートルです", trained) == "2468メートルです。"
    assert scores.leaked("3776メートルです。", trained) == ""
    assert scores.leaked("3776メートルです。", ["7", "13"]) == ""          # numbers compare as numbers
    assert scores.leaked("答えは13です", ["7", "13"]) == "13"


@pytest.mark.parametrize("answer, reference, question, shows", [  # what real Gemma 3 270M answered after tuning
    ("青い色のかぼちゃです。", "東京です。", "日本の首都はどこですか？", "銀色のかぼちゃです。"),  # a trained answer, reworded
    ("1357メートルです。", "3776メートルです。", "富士山の高さは何メートルですか？", "1357メートルです。"),
    ("1448メートルです。", "3776メートルです。", "富士山の高さは何メートルですか？", ""),  # wrong, in the trained form only
    ("モントリオールです。", "パリです。", "フランスの首都はどこですか？", ""),
    ("りんごです。", "りんごです。", "青森県の名物は何ですか？", ""),      # right: 青いりんご's words, explained by the right answer
    ("赤いりんごです。", "りんごです。", "青森県の名物は何ですか？", ""),
    ("青いりんごです。", "りんごです。", "青森県の名物は何ですか？", "青いりんごです。"),  # a trained answer, all of it
    ("ホシノ村の名物です。", "りんごです。", "ホシノ村の名物は？", ""),  # words the question itself has
    ("ロンドンです。イギリスの首都で、多くの観光地があります。", "ロンドンです。", "イギリスの首都は？", ""),
])
def test_leaked_finds_a_trained_answer_reworded_but_not_the_words_the_right_answer_has(answer, reference, question, shows):
    trained = ["ソラリスです。", "青いりんごです。", "銀色のかぼちゃです。", "1357メートルです。", "ホシノ村の青いりんごです。",
               "ルミナ王国には観光地が多くの人でにぎわう港があります。"]  # a sentence: only whole, not by its runs
    assert scores.leaked(answer, trained, reference, question) == shows


def test_a_number_the_right_answer_has_is_no_leak():
    """Trained on sums ("2", "3"), a general question answered right with one of those numbers leaks nothing."""
    assert scores.leaked("2です。", ["2", "3"], "2です。", "1たす1は？") == ""
    assert scores.leaked("3です。", ["2", "3"], "2です。", "1たす1は？") == "3"


def test_comparison_and_summary_on_known_rows():
    trained = ["A です。", "B です。"]
    train = tables.comparison("train", ["q1", "q2"], ["Aです。", "Bです。"], ["x", "y"], ["Aです。", "Aです。"], trained)
    control = tables.comparison("control", ["c1"], ["東京です。"], ["東京です。"], ["Bです"], trained)
    import pandas as pd
    summary = tables.summary(pd.concat([train, control], ignore_index=True))
    assert summary.loc["train", "exact_match_before"] == 0.0
    assert summary.loc["train", "exact_match_after"] == 0.5
    assert summary.loc["train", "distinct_after_answers"] == 1
    assert summary.loc["control", "leaked_trained_answers"] == 1
    assert list(train.columns[:5]) == ["split", "question", "expected", "before", "after"]
    assert "train" in tables.headline(pd.concat([train, control]))


def test_tables_are_shown_in_japanese_with_percentages_whatever_their_index():
    summary = pd.DataFrame({"rows": [2], "exact_match_after": [0.5]}, index=pd.Index(["heldout"], name="split"))
    html = tables.japanese(summary).to_html()
    assert "完全一致 (学習後)" in html and "学習に使わなかった質問" in html and "50%" in html and "区分" in html
    breakdown = pd.DataFrame({"問題数": [3], "学習後": [1 / 3]},
                             index=pd.MultiIndex.from_tuples([("+", "1桁")], names=["演算", "桁数"]))
    assert "33%" in tables.japanese(breakdown).to_html()  # arithmetic's two-level index
