"""Nothing lost: every loader lists every row it drops, a file given to the wrong SOURCE names the right
one, a setting that cannot apply is refused, and no fault while writing or uploading ends in a bare
library exception (issue 33)."""
import ast
import errno
import json
import os
import socket
from pathlib import Path

import pandas as pd
import pytest
from datasets import Dataset, DatasetDict

import dropped
from helpers import NOTEBOOK_DIR, artefacts, data, env, serve, share
from helpers.errors import TutorialError, japanese_errors, transport_errors

pytestmark = [pytest.mark.unit, pytest.mark.colab]  # offline and quick (make test-unit); under Colab's versions too (httpx, not httpx2)

BAD = 25  # more than the 20 rows a loader once showed before "… ほか N 行"


def write(path: Path, rows: list[dict]) -> str:
    """`rows` as a .jsonl / .json / .parquet / .csv file, as a learner's tool would write it."""
    if path.suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    elif path.suffix == ".parquet":
        pd.DataFrame(rows).to_parquet(path)
    else:
        pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


PAIRS = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(3)]
MESSAGES = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}]
SHAREGPT = [{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}]


# --- every row a loader drops is listed, with its number, field and reason ----------------------------

@pytest.mark.parametrize("suffix, first", [(".jsonl", 1), (".json", 1), (".parquet", 1), (".csv", 2)])
def test_the_hub_loader_lists_every_row_it_drops_with_its_field_and_reason(tmp_path, capsys, suffix, first):
    rows = [{"instruction": f"q{i}", "output": " \u3000" if i % 2 == 0 and i < 2 * BAD else f"a{i}"} for i in range(60)]
    rows[0] = {"instruction": "q0"}  # no answer in the first record: its columns once decided the whole file's
    rows[1]["instruction"] = ""
    rows[7]["extra"] = "補足"  # a field only a later record has is kept
    loaded = data.load_hub(write(tmp_path / f"d{suffix}", rows), input="extra")
    bad = {0, 1} | set(range(2, 2 * BAD, 2))
    listed = dropped.listed(capsys.readouterr().out)
    assert set(listed) == {i + first for i in bad} and len(loaded) == 60 - len(bad)  # the file's own numbering
    assert listed[first].startswith("[output] 値がありません" if suffix in (".jsonl", ".json", ".parquet") else "[output] 空です")
    assert listed[first + 1].startswith("[instruction] 空です") and listed[first + 2].startswith("[output] 空白しかありません")
    assert {"instruction": "q7\n補足", "output": "a7"} in loaded.to_list()


def test_a_csv_read_by_the_hub_loader_keeps_spreadsheet_rows_through_blank_lines_and_names_overfull_rows(tmp_path, capsys):
    path = tmp_path / "s.csv"
    path.write_text('q,a\nq1,a1\n\nq2,"  "\n"q3\n続き",a3\nq4,a4,extra\nq5,a5\n', encoding="utf-8")
    loaded = data.load_hub(str(path), instruction="q", output="a")
    assert loaded["instruction"] == ["q1", "q3\n続き", "q5"]
    listed = dropped.listed(capsys.readouterr().out)
    assert set(listed) == {3, 4, 6}
    assert listed[3].startswith("空の行です") and listed[4].startswith("[a] 空白しかありません") and "\"\" で囲んで" in listed[6]


def test_drop_if_lists_every_row_it_removes(tmp_path, capsys):
    rows = [{"instruction": f"q{i}", "output": f"a{i}", "ng": int(i % 2 == 0)} for i in range(2 * BAD + 10)]
    loaded = data.load_hub(write(tmp_path / "ng.jsonl", rows), drop_if="ng == 1")
    listed = dropped.listed(capsys.readouterr().out)
    assert set(listed) == {i + 1 for i in range(0, len(rows), 2)} and len(loaded) == len(rows) - len(listed)
    assert all("DROP_IF「ng == 1」に当てはまります" in line for line in listed.values())


def test_the_conversation_loader_lists_every_row_it_drops(tmp_path, capsys):
    good = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}
    rows = [{"id": 0}]  # the first record has no conversation at all
    rows += [{"messages": [{"role": "user", "content": "Q"}]} for _ in range(BAD - 2)] + [{"messages": None}]
    rows += [good] * 10
    loaded = data.load_conversations(write(tmp_path / "c.jsonl", rows))
    listed = dropped.listed(capsys.readouterr().out)
    assert set(listed) == set(range(1, BAD + 1)) and len(loaded) == 10
    assert listed[1].startswith("[messages] 「messages」がありません") and listed[BAD].startswith("[messages] 「messages」がありません")
    assert "assistant の答えがありません" in listed[2]


def test_the_text_loader_lists_paragraphs_of_spaces_alone(tmp_path, capsys):
    path = tmp_path / "t.txt"
    path.write_text("段落 1\n\n\u3000\n\n段落 2\n続き\n\n \t\n\n段落 3\n", encoding="utf-8")
    assert data.load_text(str(path))["text"] == ["段落 1", "段落 2\n続き", "段落 3"]
    listed = dropped.listed(capsys.readouterr().out)
    assert set(listed) == {3, 8} and all(line.startswith("空白しかありません") for line in listed.values())


def test_newlines_closing_a_text_file_are_no_paragraph(tmp_path, capsys):
    path = tmp_path / "t.txt"
    path.write_text("段落 1\n\n段落 2\n\n\n", encoding="utf-8")
    assert len(data.load_text(str(path))) == 2 and capsys.readouterr().out == ""


@pytest.mark.parametrize("text, columns", [
    ("instruction,output,,\nq,a,,\n", ["instruction", "output"]),  # Excel's empty columns at the right
    ("\ninstruction,output,note,note\nq,a,x,y\n", ["instruction", "output"]),  # a blank first row, a repeated unused name
    ("instruction,output\nq," + "長" * 200_000 + "\n", ["instruction", "output"]),  # a cell past csv's default limit
])
def test_csv_files_pandas_read_still_load_through_the_hub_loader(tmp_path, capsys, text, columns):
    (tmp_path / "d.csv").write_text(text, encoding="utf-8")
    loaded = data.load_hub(str(tmp_path / "d.csv"))
    assert loaded.column_names == columns and loaded[0]["instruction"] == "q" and capsys.readouterr().out == ""


def test_rows_of_a_hub_data_set_are_left_out_not_to_be_mended(monkeypatch, capsys):
    monkeypatch.setattr(data, "hub_reachable", lambda: True)
    monkeypatch.setattr(data, "load_dataset", lambda *a, **k: Dataset.from_list(PAIRS + [{"instruction": "q", "output": ""}]))
    assert len(data.load_hub("someone/pairs")) == 3
    printed = capsys.readouterr().out
    assert printed.startswith("someone/pairs: 次の 1 行を除きました。行番号は先頭から数えた順番")
    assert dropped.listed(printed) == {4: "[output] 空です → この行を除いて進みます (Hub のデータセットなので、このままで OK)"}


def test_a_drop_if_that_matches_nothing_says_so_with_the_values_it_saw(tmp_path, capsys):
    rows = [dict(PAIRS[0], flag=True)] * 3  # JSON's true is read as the text "true"
    assert len(data.load_hub(write(tmp_path / "f.jsonl", rows), drop_if="flag == True")) == 3
    assert "DROP_IF「flag == True」に当てはまる行はありませんでした" in capsys.readouterr().out.replace("'", "")


def test_a_line_separator_inside_a_jsonl_string_stays_in_its_row(tmp_path):
    rows = [{"instruction": "前\u2028後", "output": "a"}, PAIRS[1]]
    assert data.load_hub(write(tmp_path / "d.jsonl", rows))["instruction"] == ["前\u2028後", "q1"]


def test_drop_if_applies_to_conversations_too(tmp_path, capsys):
    rows = [dict(MESSAGES[0], ng=i % 2) for i in range(6)]
    assert len(data.load_conversations(write(tmp_path / "c.jsonl", rows), drop_if="ng == 1")) == 3
    assert set(dropped.listed(capsys.readouterr().out)) == {2, 4, 6}
    with pytest.raises(TutorialError, match="DROP_IF = 'flag == 1' は使えません: c.jsonl に列「flag」がありません"):
        data.load_conversations(str(tmp_path / "c.jsonl"), drop_if="flag == 1")


def test_row_limit_says_how_many_rows_it_chose(tmp_path, capsys):
    rows = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(10)]
    assert len(data.load_hub(write(tmp_path / "d.jsonl", rows), limit=4)) == 4
    assert "ROW_LIMIT = 4: 使える 10 行から 4 行を選びました" in capsys.readouterr().out


# --- a file given to the wrong SOURCE names the right one -------------------------------------------

@pytest.mark.parametrize("loader, options, name, rows, says", [
    ("load_text", {}, "t.jsonl", [{"text": "文章です。"}], "SOURCE = 'text' は使えません.*列 text の文章を .txt のファイルに書き出し"),
    ("load_hub", {}, "m.jsonl", MESSAGES, "SOURCE = 'hub' は使えません: m.jsonl は OpenAI 形式.*"
                                          "SOURCE を conversations に、CONVERSATION_FORMAT を messages にして"),
    ("load_hub", {}, "s.parquet", SHAREGPT, "SOURCE = 'hub' は使えません.*CONVERSATION_FORMAT を sharegpt"),
    ("load_csv", {}, "p.jsonl", PAIRS, "SOURCE = 'csv' は使えません: p.jsonl は 質問と答え.*SOURCE を hub にして、DATASET_ID に \\S*/p.jsonl を"),
    ("load_csv", {}, "m.json", MESSAGES, "SOURCE = 'csv' は使えません.*SOURCE を conversations"),
    ("load_conversations", {}, "p.csv", PAIRS, "SOURCE = 'conversations' は使えません: p.csv は CSV.*SOURCE を csv"),
    ("load_conversations", {}, "p.parquet", PAIRS, "SOURCE = 'conversations' は使えません.*SOURCE を hub"),
    ("load_conversations", {}, "s.jsonl", SHAREGPT, "CONVERSATION_FORMAT = 'messages' は使えません: s.jsonl は sharegpt 形式"),
    ("load_conversations", {"format": "sharegpt"}, "m.jsonl", MESSAGES, "CONVERSATION_FORMAT = 'sharegpt' は使えません.*messages にして"),
    ("load_text", {}, "p.csv", PAIRS, "SOURCE = 'text' は使えません: p.csv は CSV のファイルです.*SOURCE を csv にして、CSV_PATH に \\S*/p.csv を"),
    ("load_text", {}, "m.jsonl", MESSAGES, "SOURCE = 'text' は使えません.*SOURCE を conversations"),
    ("load_hub", {}, "t.txt", None, "SOURCE = 'hub' は使えません: t.txt は ただの文章のファイルです.*SOURCE を text にして"),
    ("load_conversations", {}, "t.txt", None, "SOURCE = 'conversations' は使えません: t.txt は ただの文章"),
])
def test_a_file_given_to_the_wrong_source_names_the_right_one(tmp_path, loader, options, name, rows, says):
    if rows is None:
        (tmp_path / name).write_text("ただの文章です。\n", encoding="utf-8")
    with pytest.raises(TutorialError, match=says):
        getattr(data, loader)(str(tmp_path / name) if rows is None else write(tmp_path / name, rows), **options)


def test_the_right_source_is_named_with_the_path_or_id_as_the_learner_wrote_it(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    write(tmp_path / "data" / "chats.jsonl", MESSAGES)
    monkeypatch.chdir(tmp_path / "data")
    with pytest.raises(TutorialError, match="CONVERSATIONS に ../data/chats.jsonl を書いてください。$"):
        data.load_hub("../data/chats.jsonl")
    monkeypatch.setattr(data, "hub_reachable", lambda: True)
    monkeypatch.setattr(data, "load_dataset", lambda *a, **k: Dataset.from_list(PAIRS))
    with pytest.raises(TutorialError, match="DATASET_ID に someone/pairs を書いてください。$"):  # no "local files too" for an ID
        data.load_conversations("someone/pairs")


# --- a setting that cannot apply is refused with the reason --------------------------------------------

@pytest.mark.parametrize("name", ["d.jsonl", "d.json", "d.csv", "d.parquet"])
def test_a_split_asked_of_a_local_file_without_splits_is_refused(tmp_path, name):
    path = write(tmp_path / name, PAIRS)
    for split in ("train", ""):
        assert len(data.load_hub(path, split=split)) == 3
    with pytest.raises(TutorialError, match=f"HUB_SPLIT = 'test' は使えません: ローカルのファイル {name} には区分"):
        data.load_hub(path, split="test")


def test_a_split_of_a_conversation_file_is_refused_too(tmp_path):
    with pytest.raises(TutorialError, match="HUB_SPLIT = 'validation' は使えません"):
        data.load_conversations(write(tmp_path / "c.jsonl", MESSAGES), split="validation")


def test_settings_that_cannot_apply_name_the_setting():
    with pytest.raises(TutorialError, match="CONVERSATION_FORMAT = 'alpaca' は使えません"):
        data.load_conversations("x.jsonl", format="alpaca")
    with pytest.raises(TutorialError, match="DROP_IF = 'ng is 1' は使えません.*列名 == 値"):
        data.parse_condition("ng is 1")
    with pytest.raises(TutorialError, match="VALIDATION_RATIO = 0.9 は使えません"):
        data.split(Dataset.from_list(PAIRS[:2]), 0.9)


def test_a_json_file_of_named_splits_is_read_by_hub_split(tmp_path):
    path = tmp_path / "splits.json"
    path.write_text(json.dumps({"train": PAIRS, "test": PAIRS[:1]}), encoding="utf-8")
    assert len(data.load_hub(str(path))) == 3 and data.load_hub(str(path), split="test")["instruction"] == ["q0"]
    with pytest.raises(TutorialError, match="HUB_SPLIT = 'nope' は使えません: splits.json の区分 \\(split\\) は train / test"):
        data.load_hub(str(path), split="nope")
    path.write_text(json.dumps({"data": PAIRS}), encoding="utf-8")  # one list, any name: the default reads it
    assert len(data.load_hub(str(path))) == 3
    path.write_text(json.dumps({"data": PAIRS, "labels": [1, 2, 3]}), encoding="utf-8")
    assert len(data.load_hub(str(path))) == 3  # the first, as before, saying so


def test_a_jsonl_line_that_is_no_record_is_named(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(PAIRS[0]) + "\n\n[1, 2]\n", encoding="utf-8")
    with pytest.raises(TutorialError, match="d.jsonl の 3 行目 が .* の形ではありません \\(list\\)"):
        data.load_hub(str(path))


# --- no fault while writing or uploading ends in a bare library exception -----------------------------

def read_only(*args, **kwargs):
    raise OSError(errno.EROFS, "Read-only file system", "/ro/outputs")


def test_a_read_only_output_folder_is_named_when_the_notebook_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("FINETUNE_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(TutorialError, match=f"{tmp_path / 'out'} を使えません.*FINETUNE_OUTPUT_DIR"):
        env.output_dir()
    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(TutorialError, match="/ro/outputs を使えません.*FINETUNE_OUTPUT_DIR"):
        env.output_dir()


@pytest.mark.parametrize("fault", ["mkdir", "rename"])
def test_setting_up_the_checkpoint_folder_in_a_read_only_folder_says_so(tmp_path, monkeypatch, fault):
    data.save_prepared(DatasetDict(train=Dataset.from_list(PAIRS), validation=Dataset.from_list(PAIRS[:1])), tmp_path)
    settings = {"EPOCHS": 1}
    artefacts.start_run(tmp_path, settings)  # the folder exists: RESUME off renames it aside
    monkeypatch.setattr(Path, fault, read_only)
    with pytest.raises(TutorialError, match="/ro/outputs を使えません.*書き込めるフォルダを出力フォルダに"):
        artefacts.start_run(tmp_path, settings, resume=fault == "mkdir")


def test_saving_the_prepared_data_in_a_read_only_folder_says_so(tmp_path, monkeypatch):
    splits = DatasetDict(train=Dataset.from_list(PAIRS), validation=Dataset.from_list(PAIRS[:1]))
    data.save_prepared(splits, tmp_path, {"MODEL": "tiny", "MAX_LENGTH": 64})
    monkeypatch.setattr(Path, "unlink", read_only)  # prepared again without 02: 02's settings file is removed
    with pytest.raises(TutorialError, match="/ro/outputs を使えません"):
        data.save_prepared(splits, tmp_path)


def test_a_server_whose_log_cannot_be_written_says_so_before_it_starts(tmp_path, monkeypatch):
    monkeypatch.setattr(Path, "mkdir", read_only)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TutorialError, match="/ro/outputs を使えません"):
        serve.launch(port, "--model", "tiny", log=tmp_path / "logs" / "server.log")


def test_every_trainer_in_the_notebooks_is_built_and_run_under_the_japanese_messages():
    """`Trainer(...)` creates its output folder; `train()` writes checkpoints: both inside `japanese_errors`."""
    found = 0
    for notebook in sorted(NOTEBOOK_DIR.glob("0*.py")):
        tree = ast.parse(notebook.read_text(encoding="utf-8"))
        guarded = {id(node) for block in ast.walk(tree) if isinstance(block, ast.With)
                   and any(ast.unparse(item.context_expr).startswith("japanese_errors(") for item in block.items)
                   for node in ast.walk(block)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("Trainer", "trainer.train"):
                found += 1
                assert id(node) in guarded, f"{notebook.name}:{node.lineno} {ast.unparse(node.func)} is outside japanese_errors"
    assert found == 4  # 00 and 03, each building one Trainer and training it


def test_a_hub_push_without_network_says_so_in_japanese(tmp_path, monkeypatch):
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(TutorialError, match="your-name/adapter へのアップロード: ネットワークに接続できません") as stopped:
        share.push(tmp_path, "your-name/adapter", "# card", hf_token="hf_not_a_real_token")
    assert isinstance(stopped.value.__cause__, transport_errors())


def test_an_upload_the_hub_turns_away_is_not_called_a_misspelt_id():
    from huggingface_hub.errors import HfHubHTTPError
    httpx = __import__(HfHubHTTPError.__mro__[1].__module__)
    for status in (429, 500, 503):
        response = httpx.Response(status, request=httpx.Request("POST", "https://huggingface.co/api/repos/create"))
        with pytest.raises(TutorialError, match=f"アップロード: Hugging Face がエラーを返しました \\(HTTP {status}\\).*時間をおいて") as stopped:
            with japanese_errors("me/repo へのアップロード"):
                raise HfHubHTTPError("busy", response=response)
        assert "つづり" not in str(stopped.value)


def test_a_repo_id_the_hub_cannot_take_is_named_before_any_upload(tmp_path):
    with pytest.raises(TutorialError, match="my repo へのアップロード: ID \\(名前\\) の書き方が正しくありません"):
        share.push(tmp_path, "my repo", "# card", hf_token="hf_not_a_real_token")


@pytest.mark.parametrize("kind", ["ConnectError", "ReadTimeout", "ConnectTimeout", "DecodingError"])
def test_httpx_transport_errors_get_the_network_advice(kind):
    from huggingface_hub.errors import HfHubHTTPError
    httpx = __import__(HfHubHTTPError.__mro__[1].__module__)  # httpx, or httpx2 in huggingface_hub 2
    with pytest.raises(TutorialError, match="ネットワークに接続できません"):
        with japanese_errors("your-name/repo"):
            raise getattr(httpx, kind)("connection failed")


def test_a_hub_data_set_whose_download_breaks_says_network(monkeypatch):
    from huggingface_hub.errors import HfHubHTTPError
    httpx = __import__(HfHubHTTPError.__mro__[1].__module__)
    monkeypatch.setattr(data, "hub_reachable", lambda: True)
    monkeypatch.setattr(data, "load_dataset", lambda *a, **k: (_ for _ in ()).throw(httpx.ReadTimeout("timed out")))
    with pytest.raises(TutorialError, match="データセット 'someone/data' の読み込み: ネットワークに接続できません"):
        data.load_hub("someone/data")


def test_a_hub_connection_lost_mid_download_is_called_a_network_fault():
    with pytest.raises(TutorialError, match="ネットワークに接続できません") as stopped:
        with japanese_errors("データセット 'k/x' の読み込み"):
            raise ConnectionError("Couldn't reach 'k/x' on the Hub (ReadTimeout)")
    assert "つづり" not in str(stopped.value)


def test_a_gated_hub_data_set_gets_the_token_advice_not_the_spelling(monkeypatch):
    from huggingface_hub.errors import HfHubHTTPError
    httpx = __import__(HfHubHTTPError.__mro__[1].__module__)
    response = httpx.Response(401, request=httpx.Request("GET", "https://huggingface.co/api/datasets/someone/gated"))
    monkeypatch.setattr(data, "hub_reachable", lambda: True)
    monkeypatch.setattr(data, "load_dataset", lambda *a, **k: (_ for _ in ()).throw(HfHubHTTPError("gated", response=response)))
    with pytest.raises(TutorialError, match="Hugging Face に拒否されました.*HF_TOKEN.*利用申請") as stopped:
        data.load_hub("someone/gated")
    assert "つづり" not in str(stopped.value)


def test_a_message_already_in_japanese_passes_nested_steps_unchanged():
    with pytest.raises(TutorialError, match="^最初の説明です。No space left$"):
        with japanese_errors("外側"), japanese_errors("内側"):
            raise TutorialError("最初の説明です。No space left")
