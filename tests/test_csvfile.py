"""The CSV checker: encodings, broken layouts, and reports that name the spreadsheet row."""
import subprocess
import sys

import pytest

import dropped
from helpers import csvfile, data
from helpers.env import REPO_ROOT
from helpers.errors import TutorialError

pytestmark = pytest.mark.unit  # offline, quick, nothing built or fetched (make test-unit)

GOOD = "instruction,output\n富士山の高さは？,3776メートルです。\n日本の首都は？,東京です。\n"


def write(tmp_path, text, encoding="utf-8", name="data.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def problems(report):
    return [(p.row, p.column, p.problem) for p in report.problems]


@pytest.mark.parametrize("encoding, name", [("utf-8", "UTF-8"), ("utf-8-sig", "UTF-8 (BOM 付き)"),
                                            ("cp932", "Shift_JIS (CP932)")])
def test_each_encoding_is_read_and_named(tmp_path, encoding, name):
    report = csvfile.check(write(tmp_path, GOOD, encoding))
    assert report.ok and report.encoding == name
    assert [r["output"] for r in report.rows] == ["3776メートルです。", "東京です。"]


def test_unknown_encoding_is_refused(tmp_path):
    report = csvfile.check(write(tmp_path, GOOD, "utf-16"))
    assert report.fatal and "UTF-8" in report.problems[0].fix


def test_quoted_multiline_answer_is_one_row_and_rows_keep_spreadsheet_numbers(tmp_path):
    text = 'instruction,output\n手順は？,"1. 開く\n2. 閉じる"\n次は？,\n'
    report = csvfile.check(write(tmp_path, text))
    assert report.rows[0]["output"] == "1. 開く\n2. 閉じる"
    assert problems(report) == [(3, "output", "空です")]  # row 3 although it is line 4 of the file


def test_faq_layout_answer_on_next_line_names_both_rows(tmp_path):
    text = "instruction,output\nよい質問,よい答え\n分かれた質問\n,分かれた答え\n"
    report = csvfile.check(write(tmp_path, text))
    assert [(p.row, p.column) for p in report.problems] == [(3, "output"), (4, "instruction")]
    assert "次の 4 行目" in report.problems[0].problem
    assert [r["row"] for r in report.rows] == [2]


def test_empty_whitespace_duplicate_blank_and_extra_cells(tmp_path):
    text = ("instruction,output\n"
            "A,1\n"        # 2 good
            " ,2\n"        # 3 whitespace only
            "B,\n"         # 4 empty output
            "A,1\n"        # 5 duplicate of 2
            ",\n"          # 6 blank row
            "C,3,4\n"      # 7 unquoted comma
            "D,4\n")       # 8 good
    report = csvfile.check(write(tmp_path, text))
    assert problems(report) == [
        (3, "instruction", "空白しかありません"), (4, "output", "空です"), (5, "", "2 行目とまったく同じです"),
        (6, "", "空の行です"), (7, "", "セルが 3 個あり、見出しの 2 個より多いです")]
    assert [r["row"] for r in report.rows] == [2, 8]


def test_missing_header(tmp_path):
    report = csvfile.check(write(tmp_path, "富士山の高さは？,3776メートルです。\n"))
    assert report.fatal and report.problems[0].row == 1
    assert "instruction,output" in report.problems[0].fix


def test_misspelt_header_suggests_the_name(tmp_path):
    report = csvfile.check(write(tmp_path, "instuction,Output\nQ,A\n"))
    assert report.fatal
    assert problems(report) == [(1, "instuction", "見出し「instuction」はつづりが違うようです")]
    assert report.problems[0].fix == "「instruction」に直してください"


def test_extra_header_column_is_noted_not_refused_and_input_is_used(tmp_path):
    report = csvfile.check(write(tmp_path, "category,instruction,input,output\n地理,首都は？,日本,東京です。\n"))
    assert report.ok and any("category" in n for n in report.notes)
    assert data.load_csv(report.path).to_list() == [{"instruction": "首都は？\n日本", "output": "東京です。"}]


def test_strict_refuses_listing_every_problem(tmp_path):
    path = write(tmp_path, "instruction,output\nA,1\nB,\n,\nA,1\n")
    with pytest.raises(TutorialError) as error:
        data.load_csv(path)
    assert "3 件" in str(error.value)
    assert all(f"{row} 行目" in str(error.value) for row in (3, 4, 5))


def test_lenient_keeps_good_rows_and_lists_each_excluded_row(tmp_path, capsys):
    path = write(tmp_path, "instruction,output\nA,1\nB,\n分かれた質問\n,答え\nC,2\n")
    dataset = data.load_csv(path, lenient=True)
    assert dataset.to_list() == [{"instruction": "A", "output": "1"}, {"instruction": "C", "output": "2"}]
    printed = capsys.readouterr().out
    assert "3 行を除きました" in printed
    rows = dropped.listed(printed)
    assert set(rows) == {3, 4, 5} and "[output] 空です" in rows[3] and "次の 5 行目" in rows[4]


def test_lenient_still_refuses_a_file_without_header(tmp_path):
    with pytest.raises(TutorialError):
        data.load_csv(write(tmp_path, "Q,A\n"), lenient=True)


def run_check(path):
    return subprocess.run([sys.executable, "-m", "helpers.data", "check", str(path)],
                          capture_output=True, text=True, cwd=REPO_ROOT)


def test_checker_cli_accepts_good_file_with_summary():
    result = run_check(REPO_ROOT / "datasets" / "sample_fictional_facts.csv")
    assert result.returncode == 0, result.stdout
    assert "使える行 40" in result.stdout and "UTF-8" in result.stdout and "output の文字数" in result.stdout


def test_checker_cli_lists_problems_and_fails(tmp_path):
    result = run_check(write(tmp_path, "instruction,output\n質問,\n,\n", "cp932"))
    assert result.returncode == 1
    assert "2 行目 [output] 空です" in result.stdout and "3 行目 空の行です" in result.stdout
    assert "Shift_JIS" in result.stdout
