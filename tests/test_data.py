import json
import subprocess
import sys
from functools import lru_cache

import pytest
from datasets import Dataset

import dropped
import real_tokenizers
from helpers import data, models, prompts, settings
from helpers.env import REPO_ROOT
from helpers.errors import TutorialError
from tooling import notebooks

pytestmark = pytest.mark.unit  # offline, quick, nothing built or fetched (make test-unit)


def write(tmp_path, text, name="data.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def test_sample_and_template_load():
    sample = data.load_csv(REPO_ROOT / "datasets" / "sample_fictional_facts.csv")
    assert sample.column_names == ["instruction", "output"] and len(sample) == 40
    template = data.load_csv(REPO_ROOT / "datasets" / "template.csv")
    assert "\n" in template[1]["output"]  # a quoted multi-line answer stays one row


@pytest.fixture
def local_hub_file(tmp_path):
    rows = [{"q": f"質問{i}", "extra": "補足" if i % 2 else "", "a": f"答え{i}", "category": "x"} for i in range(10)]
    rows.append({"q": "答えのない行", "extra": "", "a": "", "category": "x"})
    path = tmp_path / "hub.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return path


def test_hub_loader_maps_columns_and_reports_dropped_rows(local_hub_file, capsys):
    dataset = data.load_hub(str(local_hub_file), instruction="q", output="a", input="extra")
    assert dataset.column_names == ["instruction", "output"]
    assert len(dataset) == 10
    assert dataset[1] == {"instruction": "質問1\n補足", "output": "答え1"}
    assert dataset[0] == {"instruction": "質問0", "output": "答え0"}
    printed = capsys.readouterr().out
    assert dropped.listed(printed) == {11: "[a] 空です → 値を入れるか、行を削除してください"}  # the file's line


def test_hub_loader_limit_is_reproducible(local_hub_file):
    first = data.load_hub(str(local_hub_file), instruction="q", output="a", limit=4, seed=1)
    again = data.load_hub(str(local_hub_file), instruction="q", output="a", limit=4, seed=1)
    other = data.load_hub(str(local_hub_file), instruction="q", output="a", limit=4, seed=2)
    assert len(first) == 4 and first.to_list() == again.to_list() != other.to_list()


def test_hub_loader_wrong_column_lists_existing(local_hub_file):
    with pytest.raises(TutorialError) as error:
        data.load_hub(str(local_hub_file), instruction="instruction", output="a")
    assert "['instruction']" in str(error.value) and "'q'" in str(error.value)


def test_split_is_reproducible_disjoint_and_saved(tmp_path):
    dataset = data.load_csv(REPO_ROOT / "datasets" / "sample_fictional_facts.csv")
    splits = data.split(dataset, 0.2, seed=42)
    assert splits["validation"].to_list() == data.split(dataset, 0.2, seed=42)["validation"].to_list()
    assert (len(splits["train"]), len(splits["validation"])) == (32, 8)
    train_q = set(splits["train"]["instruction"])
    assert not train_q & set(splits["validation"]["instruction"])
    data.save_prepared(splits, tmp_path)
    loaded = data.load_prepared(tmp_path)
    assert loaded["train"].to_list() == splits["train"].to_list()
    # 02's validation in two: every other row chooses (03's loss, 04's epoch), the rest reports (04's heldout)
    assert loaded["validation"].to_list() == splits["validation"].to_list()[0::2]
    assert loaded["heldout"].to_list() == splits["validation"].to_list()[1::2]
    one = data.held_out(data.DatasetDict(train=splits["train"], validation=splits["validation"].select([0])))
    assert one["validation"].to_list() == one["heldout"].to_list() == splits["validation"].to_list()[:1]


def test_missing_prepared_data_is_made_as_02_makes_it_by_default_saying_so(tmp_path, capsys):
    with pytest.raises(TutorialError, match="02_build_dataset"):  # 04: scoring other data than trained on
        data.load_prepared(tmp_path)
    loaded = data.load_prepared(tmp_path, prepare_default=True)
    assert "02 の既定の設定で用意します" in capsys.readouterr().out
    assert loaded["validation"].to_list() + loaded["heldout"].to_list() == facts()["validation"].to_list()[0::2] + facts()["validation"].to_list()[1::2]
    assert loaded["train"].to_list() == data.mix_general(facts(), data.DEFAULT_GENERAL_ROWS)["train"].to_list()
    assert (tmp_path / "prepared" / "train.jsonl").is_file()
    assert data.recorded_settings(tmp_path) == {}  # 02's defaults prepared by 03: nothing 02 decided


def facts():
    return data.split(data.load_csv(REPO_ROOT / "datasets" / "sample_fictional_facts.csv"), 0.2, seed=42)


def test_general_rows_are_mixed_into_training_only_and_told_apart(capsys):
    splits = data.mix_general(facts(), 16, seed=42)
    assert (len(splits["train"]), len(splits["validation"])) == (48, 8) and "16 行" in capsys.readouterr().out
    assert splits["validation"].to_list() == facts()["validation"].to_list()
    assert data.is_general(splits["train"]).count(True) == 16
    assert data.own_rows(splits["train"]).to_list() == facts()["train"].to_list()
    asked, answers = data.general_questions(splits["train"])  # the rest, for 04's leak check at every epoch
    assert len(asked) == len(data._general()) - 16 and not set(asked) & set(splits["train"]["instruction"])
    assert data.mix_general(facts(), 16, seed=42)["train"].to_list() == splits["train"].to_list()  # reproducible
    assert data.mix_general(facts(), 0)["train"].to_list() == facts()["train"].to_list()


def test_general_rows_join_conversations_and_stay_out_of_a_speaking_style(capsys):
    talks = data.load_conversations(str(REPO_ROOT / "datasets" / "sample_conversations_ja.jsonl"))
    mixed = data.mix_general(data.split(talks, 0.2), 4)["train"]
    assert mixed.column_names == ["messages"] and mixed[-1]["messages"][0]["role"] == "user"
    assert data.is_general(mixed).count(True) == 4
    polite = data.split(Dataset.from_list([{"instruction": f"{n}番目の質問", "output": f"{n}番目に答えます。"}
                                           for n in range(10)]), 0.2)
    assert len(data.mix_general(polite, 4)["train"]) == 8 + 4  # 「ます。」 and 「です。」: the same polite way
    cat = data.split(data.load_csv(REPO_ROOT / "datasets" / "sample_style_cat.csv"), 0.2)
    assert data.mix_general(cat, 16)["train"].to_list() == cat["train"].to_list()
    assert "「だにゃ。」で終わる口調なので" in capsys.readouterr().out
    sums = data.split(Dataset.from_list([{"instruction": f"{n}たす2は？", "output": str(n + 2)} for n in range(10)]), 0.2)
    assert data.mix_general(sums, 16)["train"].to_list() == sums["train"].to_list()  # bare numbers: no sentences
    assert "ほとんどが数だけなので" in capsys.readouterr().out
    text = data.split(data.load_text(REPO_ROOT / "datasets" / "sample_text_ja.txt"), 0.2)
    assert data.mix_general(text, 16)["train"].to_list() == text["train"].to_list()
    assert data.own_rows(text["train"]).to_list() == text["train"].to_list()


def test_general_questions_are_not_the_control_questions_or_their_answers():
    """04's control (01's questions) must stay outside everything trained: a general row that asked or
    answered one of them would make a leak look like knowledge."""
    general = data._general().to_pandas()
    control = data.load_csv(REPO_ROOT / "datasets" / "baseline_questions.csv").to_pandas()
    assert general["instruction"].is_unique and len(general) >= 30
    assert not set(general["instruction"]) & set(control["instruction"])
    assert not set(general["output"]) & set(control["output"])
    assert general["output"].str.endswith("です。").all()  # the facts sample's way of answering


def test_the_defaults_used_without_02_are_02s_form_defaults():
    form = notebooks.form_values(REPO_ROOT / "notebooks" / "02_build_dataset.py")
    assert form["SOURCE"] == "csv" and form["CSV_PATH"] == f"../datasets/{data.DEFAULT_DATA.name}"
    assert (form["VALIDATION_RATIO"], form["SEED"]) == (data.DEFAULT_VALIDATION_RATIO, data.DEFAULT_SEED)
    assert form["GENERAL_ROWS"] == data.DEFAULT_GENERAL_ROWS
    assert form["MODEL"] == settings.FROM_01 and data.DEFAULT_SETTINGS["MODEL"] == models.CHOICES[0]  # 01's, else the first
    assert form["MAX_LENGTH"] == data.DEFAULT_SETTINGS["MAX_LENGTH"]


def test_03_takes_02s_model_and_max_length_and_says_when_a_form_value_overrides_them(tmp_path, capsys):
    assert data.recorded_settings(tmp_path) == {}  # 02 not run
    cfg = settings.inherit(settings.collect(MODEL=settings.FROM_02, MAX_LENGTH=settings.FROM_02), {}, "02",
                           data.DEFAULT_SETTINGS)
    assert vars(cfg) == data.DEFAULT_SETTINGS and "02 を実行していないので、02 の既定値" in capsys.readouterr().out
    splits = data.split(data.load_csv(REPO_ROOT / "datasets" / "sample_fictional_facts.csv"), 0.2)
    data.save_prepared(splits, tmp_path, {"MODEL": "tiny", "MAX_LENGTH": 64})
    cfg = settings.inherit(settings.collect(MODEL=settings.FROM_02, MAX_LENGTH=settings.FROM_02),
                           data.recorded_settings(tmp_path), "02", data.DEFAULT_SETTINGS)
    assert (cfg.MODEL, cfg.MAX_LENGTH) == ("tiny", 64)
    assert "MODEL = 'tiny'  (02 で決めた値)" in capsys.readouterr().out
    cfg = settings.inherit(settings.collect(MODEL=settings.FROM_02, MAX_LENGTH="512"), data.recorded_settings(tmp_path),
                           "02", data.DEFAULT_SETTINGS)
    assert cfg.MAX_LENGTH == 512 and "MAX_LENGTH: 02 では 64 でしたが、このノートブックの 512 を使います" in capsys.readouterr().out
    assert data.model_of_01(tmp_path) == {}  # 01 not run
    (tmp_path / "baseline_answers.csv").write_text("question,expected,answer,model\nq,e,a,Qwen/Qwen2.5-0.5B-Instruct\n")
    cfg = settings.inherit(settings.collect(MODEL=settings.FROM_01), data.model_of_01(tmp_path), "01", data.DEFAULT_SETTINGS)
    assert cfg.MODEL == "Qwen/Qwen2.5-0.5B-Instruct"  # 02 takes 01's model
    with pytest.raises(TutorialError, match="MAX_LENGTH = 'long' は整数ではありません"):
        settings.collect(MAX_LENGTH="long")


def test_drop_if_filter_is_applied_and_reported(tmp_path, capsys):
    rows = [{"instruction": f"q{i}", "output": f"a{i}", "ng_translation": str(i % 3 == 0 and 1 or 0)} for i in range(9)]
    path = tmp_path / "ng.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    dataset = data.load_hub(str(path), drop_if="ng_translation == 1")
    assert dataset["instruction"] == [f"q{i}" for i in range(9) if i % 3]
    assert "3 行を除きました" in capsys.readouterr().out


def test_rows_are_reported_by_their_original_number_after_a_filter(tmp_path, capsys):
    rows = [{"instruction": "q", "output": "a", "flag": 1}] * 3 + [{"instruction": "q", "output": "", "flag": 0}]
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    with pytest.raises(TutorialError, match="使える行が 1 行もありません"):  # nothing left: refused, not "success"
        data.load_hub(str(path), drop_if="flag == 1")
    rows = dropped.listed(capsys.readouterr().out)
    assert set(rows) == {1, 2, 3, 4} and "DROP_IF「flag == 1」" in rows[3] and "[output] 空です" in rows[4]


@pytest.mark.parametrize("condition, cell, expected", [
    ("ng_translation == 1", "1", True), ("ng_translation == 1", 1, True), ("ng_translation == 1", "0", False),
    ("score >= 2.5", 3, True), ("score < 2.5", "3", False), ("category != 'open_qa'", "open_qa", False)])
def test_parse_condition(condition, cell, expected):
    column, test = data.parse_condition(condition)
    assert column == condition.split()[0] and test(cell) is expected


def test_bad_condition_says_how_to_write_it():
    with pytest.raises(TutorialError, match="列名 == 値"):
        data.parse_condition("ng_translation is one")


def test_hub_without_network_fails_fast_with_a_message(monkeypatch):
    import time
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "ENDPOINT", "https://127.0.0.1")  # nothing listens on 443 here
    start = time.monotonic()
    with pytest.raises(TutorialError, match="接続できない"):
        data.load_hub("kunishou/databricks-dolly-15k-ja")
    assert time.monotonic() - start < 5


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return str(path)


def test_sample_conversations_load_with_their_system_message():
    dataset = data.load_conversations(str(REPO_ROOT / "datasets" / "sample_conversations_ja.jsonl"))
    assert dataset.column_names == ["messages"] and len(dataset) == 40
    assert [m["role"] for m in dataset[0]["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    prompts, expected, shown = data.last_turns(dataset)
    assert len(prompts[0]) == 4 and expected[0] == dataset[0]["messages"][-1]["content"] and shown[0] == prompts[0][-1]["content"]


def test_sharegpt_conversations_are_mapped_and_bad_rows_listed(tmp_path, capsys):
    good = [{"from": "system", "value": "短く"}, {"from": "human", "value": "こんにちは"}, {"from": "gpt", "value": "どうも"},
            {"from": "human", "value": "ありがとう"}]
    rows = [{"conversations": good, "id": 0},
            {"conversations": [{"from": "human", "value": "Q"}, {"from": "bot", "value": "A"}], "id": 1},
            {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": " "}], "id": 2},
            {"conversations": [{"from": "human", "value": "Q"}], "id": 3}]
    dataset = data.load_conversations(write_jsonl(tmp_path / "sharegpt.jsonl", rows), format="sharegpt")
    assert dataset["messages"] == [[{"role": "system", "content": "短く"}, {"role": "user", "content": "こんにちは"},
                                    {"role": "assistant", "content": "どうも"}]]
    printed = capsys.readouterr().out
    rows = dropped.listed(printed)
    assert set(rows) == {2, 3, 4} and "[conversations] 2 番目のメッセージの役割「bot」" in rows[2]
    assert "2 番目のメッセージ (gpt) が空です" in rows[3] and "assistant の答えがありません" in rows[4]
    assert "次の 1 行は最後の答えのあとに発言が続いていた" in printed and printed.endswith(": 1 行目\n")


def test_conversation_field_names_can_be_overridden(tmp_path):
    rows = [{"dialog": [{"speaker": "user", "text": "Q"}, {"speaker": "model", "text": "A"}]}]
    dataset = data.load_conversations(write_jsonl(tmp_path / "custom.jsonl", rows), column="dialog", role_key="speaker",
                                      content_key="text", assistant="model")
    assert dataset["messages"] == [[{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]]


def test_wrong_conversation_column_or_roles_say_what_to_change(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]}])
    with pytest.raises(TutorialError, match="CONVERSATION_FORMAT = 'messages' は使えません.*sharegpt 形式"):
        data.load_conversations(path)
    with pytest.raises(TutorialError, match="会話の列「dialog」がありません.*conversations"):
        data.load_conversations(path, column="dialog")
    with pytest.raises(TutorialError, match="使える会話が 1 つもありません"):
        data.load_conversations(path, format="sharegpt", assistant="assistant")


def test_conversations_that_cannot_be_trained_are_listed(tmp_path, capsys):
    rows = [{"messages": [{"role": "system", "content": "S"}, {"role": "assistant", "content": "A"}]},
            {"messages": [{"role": "assistant", "content": "A"}, {"role": "user", "content": "Q"},
                          {"role": "assistant", "content": "B"}]},
            {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}]
    assert len(data.load_conversations(write_jsonl(tmp_path / "c.jsonl", rows))) == 1
    rows = dropped.listed(capsys.readouterr().out)
    assert set(rows) == {1, 2} and all("最初の答えの前に user の発言がありません" in line for line in rows.values())
    parts = [{"messages": [{"role": "user", "content": [{"type": "text", "text": "Q"}]},
                           {"role": "assistant", "content": [{"type": "text", "text": "A"}]}]}]
    with pytest.raises(TutorialError, match="使える会話が 1 つもありません"):
        data.load_conversations(write_jsonl(tmp_path / "parts.jsonl", parts))
    assert "1 番目のメッセージの内容が文字列ではありません" in capsys.readouterr().out


def write_lines(path, lines):
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    return path


def test_numbers_are_answers_too_kept_as_text_zero_included(tmp_path):
    pairs = write_lines(tmp_path / "mixed.jsonl", [{"instruction": "1-1=", "output": 0}, {"instruction": "a", "output": "x"},
                                                   {"instruction": 2, "output": 3.5}])
    assert data.load_hub(str(pairs))["output"] == ["0", "x", "3.5"]
    numbers = write_lines(tmp_path / "numbers.jsonl", [{"instruction": "a", "output": 2}, {"instruction": "b", "output": 0.5}])
    assert data.load_hub(str(numbers))["output"] == ["2", "0.5"]  # not 2.0: a column of numbers only
    (tmp_path / "cells.csv").write_text("instruction,output\nq1,007\nq2,\nq3,3\n", encoding="utf-8")
    assert data.load_hub(str(tmp_path / "cells.csv"))["output"] == ["007", "3"]  # as written; the blank one reported
    (tmp_path / "excel.csv").write_bytes("instruction,output\n質問,答え\n".encode("cp932"))  # Excel's plain CSV
    assert data.load_hub(str(tmp_path / "excel.csv"))["instruction"] == ["質問"]
    chats = write_lines(tmp_path / "chats.jsonl", [{"messages": [{"role": "user", "content": "1-1="},
                                                                 {"role": "assistant", "content": 0}]}])
    assert data.load_conversations(str(chats))[0]["messages"][-1]["content"] == "0"


@pytest.mark.parametrize("name, text, says", [
    ("empty.jsonl", "", "空のファイル"), ("empty.csv", "", "空のファイル"),
    ("header.csv", "instruction,output\n", "使える行が 1 行もありません"),
    ("broken.jsonl", '{"instruction": "q", "output": "a"}\n{"instruction": "q" "output": "a"}\n', "broken.jsonl の 2 行目 が JSON として読めません"),
])
def test_files_without_rows_are_refused_in_japanese(tmp_path, name, text, says):
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(TutorialError, match=says):
        data.load_hub(str(tmp_path / name))


def test_a_csv_with_only_its_header_and_filters_that_remove_everything_stop(tmp_path):
    (tmp_path / "header.csv").write_text("instruction,output\n", encoding="utf-8")
    with pytest.raises(TutorialError, match="データの行がありません"):
        data.load_csv(tmp_path / "header.csv")
    rows = write_lines(tmp_path / "ng.jsonl", [{"instruction": "q", "output": "a", "ng": 1}] * 3)
    with pytest.raises(TutorialError, match="使える行が 1 行もありません"):
        data.load_hub(str(rows), drop_if="ng == 1")


def rows(count):
    return data.Dataset.from_list([{"instruction": f"q{i}", "output": "a"} for i in range(count)])


@pytest.mark.parametrize("count, ratio", [(1, 0.2), (2, 0.9), (10, 0.95)])
def test_too_few_rows_to_split_are_refused_with_the_fix(count, ratio):
    with pytest.raises(TutorialError, match=f"{count} 行を、検証用.*VALIDATION_RATIO"):
        data.split(rows(count), ratio)


def test_the_smallest_splits_that_work_keep_a_row_on_each_side():
    assert [len(part) for part in data.split(rows(2), 0.2).values()] == [1, 1]
    assert [len(part) for part in data.split(rows(5), 0.01).values()] == [4, 1]


def test_a_missing_local_file_is_not_looked_up_on_the_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "hub_reachable", lambda: pytest.fail("a file name went to the Hub"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TutorialError, match="(?s)NOPE.JSONL が見つかりません.*探した場所"):
        data.load_hub("NOPE.JSONL")


def test_check_command_reads_jsonl_pairs_and_conversations(tmp_path):
    chats = write_lines(tmp_path / "chats.jsonl", [{"messages": [{"role": "user", "content": "q"},
                                                                 {"role": "assistant", "content": "a"}]},
                                                   {"messages": [{"role": "user", "content": "q"}]}])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    results = {path: subprocess.run([sys.executable, "-m", "helpers.data", "check", str(path)], capture_output=True,
                                    text=True, cwd=REPO_ROOT) for path in (chats, empty)}
    assert results[chats].returncode == 1 and "messages の形式で、2 行のうち使える行 1" in results[chats].stdout
    assert dropped.listed(results[chats].stdout) == {2: "[messages] assistant の答えがありません → 答えのメッセージを足すか、行を削除してください"}
    assert results[empty].returncode == 1 and "空のファイル" in results[empty].stdout


@lru_cache(maxsize=None)
def real_tokenizer(pair):
    return real_tokenizers.load(pair)


@pytest.mark.network
@pytest.mark.parametrize("pair", list(real_tokenizers.PAIRS))
def test_a_turn_end_typed_into_the_data_is_refused_from_every_source_naming_row_and_field(pair, tmp_path):
    """What 02 checks with the model's tokenizer (`prompts.lengths`), whichever way the data came in."""
    tokenizer = real_tokenizer(pair)
    end = tokenizer.convert_ids_to_tokens(prompts.stop_ids(tokenizer))[-1]  # the template's own turn end
    answer = f"東京です。{end}ほかに"
    pairs = [{"instruction": "日本の首都は？", "output": "東京です。"}, {"instruction": "首都はどこ？", "output": answer}]
    turns = lambda a: [{"role": "user", "content": "こんにちは"}, {"role": "assistant", "content": "どうも。"},
                       {"role": "user", "content": "首都はどこ？"}, {"role": "assistant", "content": a}]
    (tmp_path / "pairs.csv").write_text("instruction,output\n" + "".join(f"{r['instruction']},{r['output']}\n" for r in pairs),
                                        encoding="utf-8")
    (tmp_path / "pairs.json").write_text(json.dumps(pairs, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "text.txt").write_text(f"日本の首都は東京です。\n\n首都は{end}東京です。\n", encoding="utf-8")
    sources = {
        "CSV": (lambda: data.load_csv(tmp_path / "pairs.csv"), "2 行目 (「首都はどこ？」で始まる行) の output"),
        "JSON": (lambda: data.load_hub(str(tmp_path / "pairs.json")), "2 行目 (「首都はどこ？」で始まる行) の output"),
        "JSON lines": (lambda: data.load_hub(write_jsonl(tmp_path / "pairs.jsonl", pairs)),
                       "2 行目 (「首都はどこ？」で始まる行) の output"),
        "messages": (lambda: data.load_conversations(write_jsonl(tmp_path / "chats.jsonl", [
            {"messages": turns("東京です。")}, {"messages": turns(answer)}])),
            "2 行目 (「こんにちは」で始まる行) の 4 番目のメッセージ (assistant)"),
        "sharegpt": (lambda: data.load_conversations(write_jsonl(tmp_path / "sharegpt.jsonl", [{"conversations": [
            {"from": "human", "value": f"{end}とは？"}, {"from": "gpt", "value": "印です。"}]}]), format="sharegpt"),
            f"1 行目 (「{end}とは？"),
        "text": (lambda: data.load_text(tmp_path / "text.txt"), "2 番目の段落 (「首都は"),
    }
    for source, (load, where) in sources.items():
        rows = load()
        with pytest.raises(TutorialError) as refused:
            prompts.lengths(rows, tokenizer)
        lines = str(refused.value).splitlines()
        assert lines[0].startswith("データの 1 箇所に、このモデルの特別なトークン"), source
        assert lines[1].startswith(f"- {where}") and lines[1].endswith(f": 「{end}」"), (source, lines[1])
        assert "その文字列を消すか、印と読まれない書き方" in lines[2], source
