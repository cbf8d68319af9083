import json

import pytest

from helpers import data
from helpers.env import REPO_ROOT
from helpers.errors import TutorialError


def write(tmp_path, text, name="data.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def test_sample_and_template_load():
    sample = data.load_csv(REPO_ROOT / "datasets" / "sample_fictional_facts.csv")
    assert sample.column_names == ["instruction", "output"] and len(sample) == 40
    template = data.load_csv(REPO_ROOT / "datasets" / "template.csv")
    assert "\n" in template[1]["output"]  # a quoted multi-line answer stays one row


def test_utf8_with_bom_and_whitespace_is_trimmed(tmp_path):
    path = write(tmp_path, "instruction,output\n 質問 ,答え \n", encoding="utf-8-sig")
    assert data.load_csv(path).to_list() == [{"instruction": "質問", "output": "答え"}]


def test_wrong_header_lists_found_columns(tmp_path):
    path = write(tmp_path, "question,answer\nQ,A\n")
    with pytest.raises(TutorialError) as error:
        data.load_csv(path)
    assert "['instruction', 'output']" in str(error.value) and "['question', 'answer']" in str(error.value)


def test_every_empty_cell_is_reported_with_its_spreadsheet_row(tmp_path):
    # the FAQ's broken layout: the answer on the next line becomes two half-empty rows
    path = write(tmp_path, "instruction,output\nよい行,答え\n質問だけ\n,次の行の答え\n")
    with pytest.raises(TutorialError) as error:
        data.load_csv(path)
    message = str(error.value)
    assert "2 件" in message
    assert "3 行目の output" in message and "4 行目の instruction" in message


def test_shift_jis_file_gets_a_save_as_utf8_message(tmp_path):
    path = write(tmp_path, "instruction,output\n質問,答え\n", encoding="cp932")
    with pytest.raises(TutorialError, match="UTF-8"):
        data.load_csv(path)


def test_unparsable_csv_gets_a_message(tmp_path):
    path = write(tmp_path, "instruction,output\nA,B\nC,D,E,F\n")
    with pytest.raises(TutorialError, match="列の数"):
        data.load_csv(path)


def test_missing_file_says_so(tmp_path):
    with pytest.raises(TutorialError, match="見つかりません"):
        data.load_csv(tmp_path / "nothing.csv")


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
    assert "1 行を除きました" in printed and "[10]" in printed


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


def test_load_prepared_names_the_notebook_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="02_build_dataset"):
        data.load_prepared(tmp_path)
