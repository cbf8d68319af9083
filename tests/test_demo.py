"""What the demo must honestly show, read from notebook 04's comparison.csv on the tiny model."""
import json
import re
import sys

import pandas as pd
import pytest

from helpers import artefacts, gguf_export
from tooling import notebooks
from helpers.scores import normalize, style_ending
from helpers.tables import style_scores

pytestmark = pytest.mark.colab  # run under Colab's versions too (make test)


@pytest.fixture(scope="module")
def out(demo_outputs):
    return demo_outputs


@pytest.fixture(scope="module", params=[".", artefacts.QUICKSTART], ids=["04", "00"])
def table(out, request):
    """04's table, and the quick start's (00, the same path in one notebook): each must show the same learning."""
    return pd.read_csv(out / request.param / "comparison.csv", keep_default_na=False)


def rows(table, split):
    part = table[table["split"] == split]
    assert len(part) > 0, split
    return part


def exact(part, column):
    return (part[column].map(normalize) == part["expected"].map(normalize)).mean()


def test_columns(table):
    assert {"split", "question", "expected", "before", "after"} <= set(table.columns)
    assert set(table["split"]) == {"train", "heldout", "control"}


def test_before_tuning_knows_none_of_the_facts(table):
    for split in ("train", "heldout"):
        assert exact(rows(table, split), "before") <= 0.1


def test_after_tuning_answers_trained_and_heldout_questions(table):
    # The tiny model is pre-trained on this machine, and its weights differ with the CPU's instruction set
    # (AVX2, AVX-512): 8 of the 8 held-out paraphrases on some, 7 on others (00 asks all 8; 04 the 4 that did not
    # choose its epoch: 4 of 4 measured). At least 3 in 4 is learning. Train: 32 and 29 of 32 (00, 04) measured.
    assert exact(rows(table, "train"), "after") >= 28 / 32
    assert exact(rows(table, "heldout"), "after") >= 0.75


def test_each_entity_gets_its_own_answer(table):
    facts = pd.concat([rows(table, "train"), rows(table, "heldout")])
    assert facts["expected"].nunique() >= 5
    right = facts[facts["after"].map(normalize) == facts["expected"].map(normalize)]
    assert set(right["after"].map(normalize)) == set(facts["expected"].map(normalize))


def test_control_questions_get_no_trained_answer(table):
    trained = {normalize(a) for a in rows(table, "train")["expected"]}
    for answer in rows(table, "control")["after"]:
        assert not any(t in normalize(answer) for t in trained), answer


def test_the_model_03_trained_was_loaded_as_the_settings_say(out):
    """4-bit (NF4, `make test`'s Colab run) about 1 MiB for the tiny model's weights, 4 MiB in float32."""
    executed = (out / "executed" / "03_lora_finetune.ipynb").read_text(encoding="utf-8")
    footprint = int(re.search(r"読み込んだモデルのメモリ: (\d+) MiB", executed).group(1))
    four_bit = json.loads((out / artefacts.SETTINGS).read_text(encoding="utf-8"))["USE_4BIT"]
    assert footprint <= 2 if four_bit else footprint >= 4, (four_bit, footprint)


def test_report_and_checkpoint_choice_are_written(out):
    table = pd.read_csv(out / "comparison.csv", keep_default_na=False)
    html = (out / "report.html").read_text(encoding="utf-8")
    for heading in ("まとめ", "損失の推移", "エポックごとの評価", "学習前と学習後の答え"):
        assert f"<h2>{heading}</h2>" in html
    assert html.count("data:image/png;base64,") == 2  # loss curve and per-epoch plot
    assert all(question in html for question in table["question"])
    perplexity = pd.read_csv(out / "perplexity.csv", index_col=0)
    assert perplexity.loc["heldout", "perplexity_after"] < perplexity.loc["heldout", "perplexity_before"] / 10


def test_share_notebook_shares_the_adapter_04_scored_with_its_scores(out):
    evaluated = json.loads((out / artefacts.EVALUATED / artefacts.STAMP).read_text(encoding="utf-8"))
    assert evaluated["run"] == json.loads((out / artefacts.ADAPTER / artefacts.STAMP).read_text(encoding="utf-8"))["run"]
    chosen = (out / artefacts.ADAPTER if evaluated["checkpoint"] == "adapter" else
              out / artefacts.CHECKPOINTS / evaluated["run"] / artefacts.EPOCHS / f"epoch-{evaluated['checkpoint']:03d}")
    weights = "adapter_model.safetensors"
    assert (out / artefacts.EVALUATED / weights).read_bytes() == (chosen / weights).read_bytes()
    summary = pd.read_csv(out / artefacts.SUMMARY, index_col="split")
    assert pd.DataFrame(evaluated["summary"]).set_index("split").equals(summary)
    card = (out / artefacts.EVALUATED / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nbase_model: tiny\nlibrary_name: peft")
    heldout = summary.loc["heldout"]
    assert f"| heldout | 4 | 0.0 | {heldout['exact_match_after']} |" in card  # 04's summary: 4 held-out rows, 0% → after


def test_share_notebook_writes_a_gguf_and_a_modelfile_on_the_tiny_path(out, tiny_tokenizer):
    folder = out / artefacts.GGUF
    assert sorted(p.name for p in folder.iterdir()) == ["Modelfile", "adapter-lora-f16.gguf", "model-q8_0.gguf"]
    modelfile = (folder / "Modelfile").read_text(encoding="utf-8")
    assert "FROM ./model-q8_0.gguf\n" in modelfile and 'PARAMETER stop "</s>"' in modelfile
    sys.path.insert(0, str(gguf_export.converter() / "gguf-py"))  # llama.cpp's own reader, beside its converter
    from gguf import GGUFReader
    fields = GGUFReader(folder / "model-q8_0.gguf").fields
    text = {name: fields[name].contents() for name in ("general.architecture", "tokenizer.chat_template", "tokenizer.ggml.model")}
    assert text == {"general.architecture": "llama", "tokenizer.chat_template": tiny_tokenizer.chat_template,
                    "tokenizer.ggml.model": "llama"}  # LM Studio reads the template from the file
    assert fields["tokenizer.ggml.eos_token_id"].contents() == tiny_tokenizer.eos_token_id


@pytest.fixture(scope="module")
def style(tmp_path_factory):
    """The style demo, as `make demo` runs it (without 01): 02's CSV is the cat's way of speaking."""
    out = tmp_path_factory.mktemp("style")
    notebooks.run(out, since="02", upto="04", settings={"CSV_PATH": "../datasets/sample_style_cat.csv"})  # 01 adds nothing
    return pd.read_csv(out / "comparison.csv", keep_default_na=False)


@pytest.mark.newest_pins
def test_the_style_demo_teaches_the_cats_way_of_speaking_on_questions_it_did_not_see(style):
    ending = style_ending(list(rows(style, "train")["expected"]))
    assert ending == "だにゃ。"
    heldout = style_scores(style, ending).loc["heldout"]
    # The style is new, and learnt. Reported on the 5 held-out questions that did not choose the epoch (04 chose on
    # the other 5 of the 10): 2 of 5 in the style, 2 of 5 keeping their content, measured on AVX-512. Chosen and
    # reported on all 10 together (before issue 30), 7 to 10 of the 10 were in the style: that figure was optimistic.
    assert heldout["style_before"] == 0 and heldout["style_after"] >= 0.2  # a row of margin for other CPUs
    assert heldout["content_before"] == 1 and heldout["content_after"] >= 0.2
