"""The tutorial's defaults on real pretrained weights (`make test-real`): google/gemma-3-270m, a multilingual
base model (tests/real_model.py), through notebooks 02→05 as a T4 user runs them, in fp16, which this
model overflows: the run must say so and go on in fp32. What 04 promises is checked with controls."""
import json
import re

import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import real_model
from helpers import artefacts, env, models, overflow
from tooling import notebooks
from helpers.prompts import prompt_ids
from helpers.scores import normalize

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def folder():
    return real_model.path()


@pytest.fixture(scope="module")
def out(folder, tmp_path_factory):
    """02→05 with every form value at its default, as `make demo-real` runs them (01 adds nothing checked here)."""
    out = tmp_path_factory.mktemp("real")
    notebooks.run(out, since="02", model=str(folder))
    return out


@pytest.fixture(scope="module")
def table(out):
    return pd.read_csv(out / artefacts.COMPARISON, keep_default_na=False)


def rows(table, split):
    return table[table["split"] == split]


def exact(part, column):
    return (part[column].map(normalize) == part["expected"].map(normalize)).mean()


def test_its_fp16_overflows_and_loading_goes_on_in_fp32(folder, capsys):
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = prompt_ids(tokenizer, "日本の首都はどこですか？")
    assert not overflow.finite(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float16), ids)  # NaN logits
    model = models.load(str(folder), env.Precision("cpu", torch.float16, True, False, "T4"))
    assert model.dtype == torch.float32 and overflow.finite(model, ids)
    assert "fp16 では計算があふれます" in capsys.readouterr().out


def test_each_notebook_said_so_and_trained_in_fp32(out):
    for stem in ("03_lora_finetune", "04_compare_after_tuning", "05_share_and_serve"):
        executed = (out / "executed" / f"{stem}.ipynb").read_text(encoding="utf-8")
        assert "fp16 では計算があふれます" in executed and "fp32 (32 ビット) で読み込み直して" in executed, stem
    assert not json.loads((out / artefacts.SETTINGS).read_text(encoding="utf-8"))["USE_4BIT"]


def test_the_facts_are_learned_and_answered_when_asked_in_other_words(table):
    for split in ("train", "heldout"):
        assert exact(rows(table, split), "before") == 0  # a base model: it does not even answer in the chat format
    # 29 of 32 and 4 of the 4 held-out questions that did not choose the epoch measured (README; of all 8, 6 were
    # right, the 2 misses a digit off, "1358メートル", both in the half that chose); a row of margin for other CPUs
    assert exact(rows(table, "train"), "after") >= 28 / 32
    assert exact(rows(table, "heldout"), "after") >= 5 / 8


def test_each_fact_gets_its_own_answer(table):
    """A control against a constant answer: every fact answered right at least once, each with its own answer."""
    facts = pd.concat([rows(table, "train"), rows(table, "heldout")])
    right = facts[facts["after"].map(normalize) == facts["expected"].map(normalize)]
    assert set(right["expected"].map(normalize)) == set(facts["expected"].map(normalize))


def test_at_the_epoch_04_chose_few_general_questions_get_a_trained_answer(out):
    """04 scored every epoch on the 4 validation questions (every other held-out row) and on the 19 general questions
    not mixed into training (35 less 16). At the epoch it chose (5 of 7), 2 of the 4 were right and 6 of the 19 got
    a trained answer (32%); without the general rows, 14 of the same 19 did."""
    evaluated = json.loads((out / artefacts.EVALUATED / artefacts.STAMP).read_text(encoding="utf-8"))
    executed = (out / "executed" / "04_compare_after_tuning.ipynb").read_text(encoding="utf-8")
    assert f"このあとは epoch {evaluated['checkpoint']} のアダプター" in executed
    chosen = re.search(rf"おすすめ: epoch {evaluated['checkpoint']} \(完全一致 (\d+)%、一般的な質問 19 問への紛れ込み (\d+)%", executed)
    assert int(chosen.group(1)) >= 25 and int(chosen.group(2)) <= 40, chosen.group(0)  # a row of margin


def test_control_questions(table, out):
    """General questions outside the data. This base model has little to lose: before tuning it does not answer
    (it repeats the question), so none is right before or after. What tuning must not do is make it answer with
    what it was taught, and there the defaults fall short of the tutorial's aim (none): 2 of the 5 get a trained
    answer (one verbatim, one reworded), with or without the general rows (README). This bound has no margin. Their
    right answers must not get less likely (a weak check on a base model: before, it does not know the chat format)."""
    control = rows(table, "control")
    assert len(control) == 5 and exact(control, "before") == 0
    assert (control["after_leaked"] != "").sum() <= 2
    perplexity = pd.read_csv(out / artefacts.PERPLEXITY, index_col=0)
    assert perplexity.loc["control", "perplexity_after"] < perplexity.loc["control", "perplexity_before"]


@pytest.fixture(scope="module")
def quickstart(folder, tmp_path_factory):
    """00, the quick start, alone (`--only 00`), as a T4 user runs it: its defaults, fp16 asked for."""
    out = tmp_path_factory.mktemp("quickstart")
    notebooks.run(out, only="00", model=str(folder))
    return out / artefacts.QUICKSTART


def test_the_quick_start_teaches_the_facts_in_one_notebook(quickstart):
    """The same learning as 02→04 in one notebook, trained to its last epoch (no epoch chosen, so all 8 held-out
    questions report): each fact its own answer, asked in other words too. Measured: train 30 of 32, held-out 6 of
    8 (the misses a digit off: 246, 1358), 1 of the 5 control questions given a trained answer."""
    table = pd.read_csv(quickstart / artefacts.COMPARISON, keep_default_na=False)
    for split in ("train", "heldout"):
        assert exact(rows(table, split), "before") == 0
    assert exact(rows(table, "train"), "after") >= 28 / 32
    assert exact(rows(table, "heldout"), "after") >= 5 / 8
    facts = pd.concat([rows(table, "train"), rows(table, "heldout")])
    right = facts[facts["after"].map(normalize) == facts["expected"].map(normalize)]
    assert set(right["expected"].map(normalize)) == set(facts["expected"].map(normalize))
    assert (rows(table, "control")["after_leaked"] != "").sum() <= 2


@pytest.fixture(scope="module")
def overtrained(folder, tmp_path_factory):
    """00 again with a learning rate 10 times the default (2e-3): the over-trained run the general check must catch."""
    out = tmp_path_factory.mktemp("overtrained")
    notebooks.run(out, only="00", model=str(folder), settings={"LEARNING_RATE": 2e-3})
    return out / artefacts.QUICKSTART


def rise(general: pd.DataFrame) -> float:
    """How far the reference answers' perplexity rose (median after / median before)."""
    return general["perplexity_after"].median() / general["perplexity_before"].median()


def test_the_general_check_rises_more_for_an_over_trained_run_than_for_the_default(quickstart, overtrained, out):
    """ELYZA-tasks-100's first 10 reference answers, their perplexity before and after (helpers.general), in 00.
    Measured (median): default 24.7 → 650 (×26: this 270M base model loses general Japanese with the defaults,
    as its general-text perplexity in 04 says too), 10× the learning rate 24.7 → 33,260 (×1,348). Bound: 5×."""
    default = pd.read_csv(quickstart / artefacts.GENERAL)
    over = pd.read_csv(overtrained / artefacts.GENERAL)
    assert len(default) == len(over) == 10 and default["task"].tolist() == list(range(1, 11))
    assert rise(over) > 5 * rise(default) and rise(default) > 1, (rise(default), rise(over))
    tuned = pd.read_csv(out / artefacts.GENERAL, keep_default_na=False)  # 04: answers too, and perplexity
    assert len(tuned) == 10 and (tuned["before"] != "").all() and (tuned["after"] != "").all()
    assert (tuned["judge_before"] == "").all()  # no judge given


def test_05_merged_served_and_said_why_there_is_no_gguf(out):
    """llama.cpp's converter refuses Gemma 3's tokenizer for the 270M: its image token's id is the vocabulary's size."""
    assert (out / "merged" / "config.json").exists() and (out / artefacts.EVALUATED / "adapter_config.json").exists()
    served = (out / "executed" / "05_share_and_serve.ipynb").read_text(encoding="utf-8")
    assert "stream=True で少しずつ: " in served and "の答え: " in served  # 05's server, called by the openai client
    assert not (out / "gguf").exists() and "モデルの語彙の大きさ (config.json の vocab_size) を超える" in served
