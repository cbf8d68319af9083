"""Load instruction/output data (own CSV, a Hub / local data set, plain text), split, save.

    python -m helpers.data check FILE   # .csv / .json / .jsonl / .parquet: exit 0 with a summary, or 1 with the problems
"""
from __future__ import annotations

import ast
import csv
import functools
import io
import json
import math
import operator
import re
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
from datasets import (Dataset, DatasetDict, Features, Value, concatenate_datasets, disable_progress_bars,
                      load_dataset)
from datasets.exceptions import DatasetGenerationError

from . import artefacts, csvfile
from .env import REPO_ROOT, locate, require
from .errors import Problem, TutorialError, japanese_errors, list_dropped, refuse, rows_text
from .models import CHOICES
from .processes import is_writer
from .prompts import qa_messages, row_messages
from .scores import normalize, style_ending

# 02's default form values, used when a later notebook prepares the data itself (tests keep them equal)
DEFAULT_DATA = REPO_ROOT / "datasets" / "sample_fictional_facts.csv"
GENERAL_QA = REPO_ROOT / "datasets" / "general_qa_ja.csv"  # mixed into training by `mix_general` (02's GENERAL_ROWS)
GENERAL_TEXT = REPO_ROOT / "datasets" / "tiny_corpus_ja.txt"  # short general sentences: 04's general-ability perplexity
DEFAULT_VALIDATION_RATIO, DEFAULT_SEED, DEFAULT_GENERAL_ROWS = 0.2, 42, 16
DEFAULT_SETTINGS = {"MODEL": CHOICES[0], "MAX_LENGTH": 256}  # 02's MODEL and MAX_LENGTH
FILE_TYPES = {".json", ".jsonl", ".csv", ".parquet"}  # else: a Hub ID
TEXT_TYPES = {".txt", ".md"}  # what SOURCE text reads
disable_progress_bars()  # datasets' "Map" / "Generating train split" bars: instant at these sizes, and only jargon


def load_csv(path: str | Path, lenient: bool = False) -> Dataset:
    """An instruction/output CSV as a data set (an `input` column is appended to the question).

    Strict (default): any problem refuses the file, listing them all. Lenient: the good rows are
    kept and every excluded row is listed with the reason.
    """
    if Path(path).suffix.lower() in FILE_TYPES - {".csv"}:
        raise _wrong_source("csv", str(path))
    report = csvfile.check(locate(path))
    print(report.describe().splitlines()[0])
    for note in report.notes:
        print(f"  ・{note}")
    if report.problems and (report.fatal or not lenient):
        raise TutorialError(f"{report.path.name} に {len(report.problems)} 件の問題があります "
                            f"(行番号は{SPREADSHEET}):\n" + "\n".join(map(str, report.problems)))
    list_dropped(f"{report.path.name} (lenient モード)", report.problems, SPREADSHEET)
    rows = [{k: r[k] for k in ("instruction", "input", "output")} for r in report.rows]
    return _pairs(_some(Dataset.from_list(rows), report.path.name), input="input")


def _text(value) -> str:
    """A cell as text: numbers (0 included) kept as their digits, only None or blanks are empty."""
    return "" if value is None else str(value).strip()


def _pairs(dataset: Dataset, instruction: str = "instruction", output: str = "output", input: str = "") -> Dataset:
    """Only instruction/output columns (as text, whatever the cell's type); the input (if any) appended
    to the instruction on a new line."""
    def to_pair(row):
        extra = _text(row[input]) if input else ""
        return {"instruction": _text(row[instruction]) + ("\n" + extra if extra else ""), "output": _text(row[output])}
    kept = {"_row": Value("int64")} if "_row" in dataset.column_names else {}
    return dataset.map(to_pair, remove_columns=[c for c in dataset.column_names if c != "_row"],
                       features=Features(kept | {"instruction": Value("string"), "output": Value("string")}))


def _some(dataset: Dataset, what: str) -> Dataset:
    """Stop when nothing usable is left (an empty file, or filters that removed every row)."""
    if len(dataset) == 0:
        raise TutorialError(f"{what} に使える行が 1 行もありません。ファイルの中身と、除外の条件 (DROP_IF など) を確かめてください。")
    return dataset


_OPERATORS = {"==": operator.eq, "!=": operator.ne, ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


def parse_condition(condition: str):
    """`"ng_translation == 1"` → (column, test); values compare as numbers when both are numbers."""
    for symbol in sorted(_OPERATORS, key=len, reverse=True):
        if symbol in condition:
            column, value = (part.strip() for part in condition.split(symbol, 1))
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                pass

            def test(cell, op=_OPERATORS[symbol], value=value):
                try:
                    return op(float(cell), float(value))
                except (TypeError, ValueError):
                    return op(str(cell), str(value))
            return column, test
    raise refuse("DROP_IF", condition, "条件として読めません", "「列名 == 値」の形で書いてください (例: ng_translation == 1)")


def hub_reachable(timeout: float = 3.0) -> bool:
    from huggingface_hub import constants
    try:
        socket.create_connection((urlparse(constants.ENDPOINT).hostname, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _as_text(value):
    """Every number or true/false in a JSON record as the text it was written as (`0`, `2`, `0.5`),
    so columns that mix numbers and text load, and no answer turns into `2.0`."""
    if isinstance(value, dict):
        return {key: _as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_text(item) for item in value]
    return json.dumps(value) if isinstance(value, (bool, int, float)) else value


SPREADSHEET = "表計算ソフトで見える番号"
NUMBERING = {".jsonl": "ファイルの行番号", ".json": "ファイルの中の順番 (1 始まり)", ".csv": SPREADSHEET,
             ".parquet": "先頭から数えた順番 (1 始まり)"}
HUB_NUMBERING = "先頭から数えた順番 (1 始まり。Python の dataset[i] は i+1 行目)"


def _no_split(path: Path, split: str, splits: list[str] = ()) -> None:
    """HUB_SPLIT names a part of a Hub data set; a local file has none (or only the ones in `splits`)."""
    if split in ("", "train") and not splits:
        return
    if splits:
        raise refuse("HUB_SPLIT", split, f"{path.name} の区分 (split) は {' / '.join(splits)} です",
                     "HUB_SPLIT にそのどれかを書いてください")
    raise refuse("HUB_SPLIT", split, f"ローカルのファイル {path.name} には区分 (split) がありません",
                 "HUB_SPLIT を train (既定) に戻すか、使いたい区分だけを入れたファイルを指定してください")


def _records(path: Path, split: str) -> tuple[list[dict], list[int]]:
    """A .json / .jsonl file's records and their numbers (.jsonl: the line; .json: the place in its list)."""
    text = path.read_text(encoding="utf-8-sig")
    jsonl = path.suffix.lower() == ".jsonl"
    records, numbers, number = [], [], 0
    try:
        if not jsonl:
            records = json.loads(text)
        else:
            for number, line in enumerate(text.split("\n"), start=1):  # not splitlines: U+2028 may be inside a string
                if line.strip():
                    records.append(json.loads(line))
                    numbers.append(number)
    except json.JSONDecodeError as exc:
        where = f"{number} 行目" if jsonl else f"{exc.lineno} 行目 {exc.colno} 文字目"
        raise TutorialError(f"{path.name} の {where} が JSON として読めません ({exc.msg})。その行を直してください"
                            " (.jsonl は 1 行に 1 つの {...})。") from exc
    if isinstance(records, dict):  # {"train": [...], "test": [...]}, {"data": [...]}, or one record
        parts = [key for key, value in records.items() if isinstance(value, list) and key not in COLUMNS]
        if split in parts:
            records = records[split]
        elif parts and split in ("", "train"):
            if len(parts) > 1:
                print(f"{path.name} には一覧が {len(parts)} つ ({' / '.join(parts)}) あるので、最初の {parts[0]} を使います。"
                      "ほかの一覧を使うなら、HUB_SPLIT にその名前を書きます。")
            records = records[parts[0]]
        else:
            _no_split(path, split, parts)
            records = [records]
    elif not jsonl:
        _no_split(path, split)
    wrong = next((i for i, record in enumerate(records) if not isinstance(record, dict)), None)
    if wrong is not None:
        where = f"{numbers[wrong]} 行目" if jsonl else f"{wrong + 1} 番目の記録"
        raise TutorialError(f"{path.name} の {where} が {{\"列名\": 値, ...}} の形ではありません "
                            f"({type(records[wrong]).__name__})。その行を直してください。")
    return records, numbers or list(range(1, len(records) + 1))


def _names(cells: list[str]) -> list[str]:
    """CSV column names as pandas gives them: a blank one `Unnamed: i`, a repeated one `name.1`."""
    names = []
    for index, cell in enumerate(cells):
        base = name = cell or f"Unnamed: {index}"
        count = 0
        while name in names:
            count += 1
            name = f"{base}.{count}"
        names.append(name)
    return names


def _csv(path: Path) -> tuple[Dataset, list[Problem]]:
    """A CSV read as a spreadsheet shows it: every row numbered as there (blank rows kept, then listed as dropped)."""
    text, _ = csvfile._decode(path.read_bytes())
    records = list(csv.reader(io.StringIO(text, newline="")))
    top = next((i for i, cells in enumerate(records) if any(c.strip() for c in cells)), 0)  # blank rows above the header
    header = _names(records[top] if records else [])
    rows, problems = [], []
    for number, cells in enumerate(records[top + 1:], start=top + 2):
        if problem := csvfile.overfull(number, cells, len(header)):
            problems.append(problem)
        else:
            rows.append((number, cells + [""] * (len(header) - len(cells))))
    columns = {name: [cells[i] for _, cells in rows] for i, name in enumerate(header)}
    features = Features({name: Value("string") for name in header} | {"_row": Value("int64")})
    return Dataset.from_dict(columns | {"_row": [number for number, _ in rows]}, features=features), problems


def _local(path: Path, split: str) -> tuple[Dataset, list[Problem]]:
    """A local file with every cell read as written (JSON numbers and CSV cells such as `007` stay text), each
    row's number in a `_row` column, and the rows the file's own format could not hold."""
    if path.stat().st_size == 0:
        raise TutorialError(f"{path} は空のファイルです。データの行を書いてから、もう一度実行してください。")
    suffix = path.suffix.lower()
    if suffix != ".json":  # a .json file may hold its splits as {"train": [...], "test": [...]}: `_records`
        _no_split(path, split)
    if suffix == ".parquet":  # typed columns, nothing to guess
        dataset = load_dataset("parquet", data_files=str(path), split="train")
        return dataset.add_column("_row", list(range(1, len(dataset) + 1))), []
    if suffix == ".csv":  # UTF-8 (with or without BOM) or Shift_JIS, as 02's own CSV reader
        return _csv(path)
    records, numbers = _records(path, split)
    columns = list(dict.fromkeys(key for record in records for key in record))  # every record's fields, not the first's
    return Dataset.from_dict({c: [_as_text(r.get(c)) for r in records] for c in columns} | {"_row": numbers}), []


def _is_local(dataset_id: str) -> bool:
    return Path(dataset_id).suffix.lower() in FILE_TYPES


def _shown(dataset_id: str) -> str:
    """How a data set is named in messages: a local file by its name, a Hub data set by its ID."""
    return Path(dataset_id).name if Path(dataset_id).suffix.lower() in FILE_TYPES | TEXT_TYPES else dataset_id


def _load(dataset_id: str, split: str, source: str = "hub") -> tuple[Dataset, str, list[Problem]]:
    """A Hub data set or a local .json/.jsonl/.csv/.parquet file (read by `_local`), each row's number in a
    `_row` column; how those numbers count; and the rows that could not be read. A .txt is no data set:
    `source` (hub or conversations) names the SOURCE it was given to."""
    if Path(dataset_id).suffix.lower() in TEXT_TYPES:
        raise _wrong_source(source, dataset_id)
    local = _is_local(dataset_id)
    if local:
        dataset_id = str(locate(dataset_id))
    elif not hub_reachable():
        raise TutorialError(f"Hugging Face Hub に接続できないので {dataset_id!r} を読み込めません。"
                            "インターネット接続を確認するか、ローカルのファイル (.jsonl / .csv / .parquet) を指定してください。")
    with japanese_errors(f"データセット {dataset_id!r} の読み込み"):  # a download that breaks: the network advice
        try:
            if local:
                dataset, problems = _local(Path(dataset_id), split)
                return dataset, NUMBERING[Path(dataset_id).suffix.lower()], problems
            dataset = load_dataset(dataset_id, split=split)
            return dataset.add_column("_row", list(range(1, len(dataset) + 1))), HUB_NUMBERING, []
        except (OSError, ValueError, DatasetGenerationError, csv.Error) as exc:
            if isinstance(exc, ConnectionError) or getattr(getattr(exc, "response", None), "status_code", None) in (401, 403):
                raise  # japanese_errors: the network advice, or the token's (a gated data set)
            if local:
                raise TutorialError(f"ファイル {dataset_id} を読み込めませんでした。データの行があるか、中身が拡張子 "
                                    f"({Path(dataset_id).suffix}) の形式どおりかを確かめてください (元のエラー: {str(exc).splitlines()[0]})") from exc
            raise TutorialError(f"データセット {dataset_id!r} (split={split!r}) を読み込めませんでした。ID と split の"
                                f"つづりを確認してください (元のエラー: {str(exc).splitlines()[0]})") from exc


def _take(dataset: Dataset, limit: int, seed: int) -> Dataset:
    """A reproducible random subset of `limit` rows (all rows when `limit` is 0), saying so."""
    if not limit or limit >= len(dataset):
        return dataset
    print(f"ROW_LIMIT = {limit}: 使える {len(dataset)} 行から {limit} 行を選びました (SEED で毎回同じ行)。全部使うなら ROW_LIMIT を 0 にします。")
    return dataset.shuffle(seed=seed).select(range(limit))


def _fix(dataset_id: str) -> str:
    """What to do about a row that can't be used: mend your own file; a Hub data set's row is simply left out."""
    return "値を入れるか、行を削除してください" if _is_local(dataset_id) else "この行を除いて進みます (Hub のデータセットなので、このままで OK)"


def _missing(value, column: str, row: int, fix: str) -> Problem | None:
    """Why a cell holds no question or answer (absent, empty, only spaces), or None when it has text."""
    if value is None:
        return Problem(row, column, "値がありません (その列がない行か、null)", fix)
    if not str(value).strip():
        return Problem(row, column, "空白しかありません" if str(value) else "空です", fix)
    return None


def _matches(drop_if: str, dataset: Dataset, dataset_id: str) -> list[Problem]:
    """The rows DROP_IF ("column == value") removes, each as a dropped row."""
    if not drop_if.strip():
        return []
    column, test = parse_condition(drop_if)
    if column not in dataset.column_names:
        raise refuse("DROP_IF", drop_if, f"{_shown(dataset_id)} に列「{column}」がありません (ある列: {_columns(dataset)})",
                     "列名を直すか、DROP_IF を空にしてください")
    matched = [Problem(row, column, f"条件 DROP_IF「{drop_if}」に当てはまります", "使うなら DROP_IF を空にするか、条件を変えてください")
               for row, cell in zip(dataset["_row"], dataset[column]) if test(cell)]
    if not matched:
        values = sorted({str(cell) for cell in dataset[column][:1000]})[:10]
        print(f"DROP_IF「{drop_if}」に当てはまる行はありませんでした (除いた行はありません)。列「{column}」の値の例: {values}。"
              "値の書き方が違っていないか確かめてください。")
    return matched


def load_hub(dataset_id: str, split: str = "train", instruction: str = "instruction",
             output: str = "output", input: str = "", drop_if: str = "", limit: int = 0,
             seed: int = 42) -> Dataset:
    """A Hub data set (or a local .json/.jsonl/.csv/.parquet file) mapped to instruction/output.

    `drop_if` ("column == value") removes rows; `limit` > 0 keeps a reproducible random subset.
    Every row left out (no question or answer, the condition, unreadable) is listed with its number and why.
    """
    dataset, numbering, dropped = _load(dataset_id, split)
    wanted = [instruction, output] + ([input] if input else [])
    missing = [name for name in wanted if name not in dataset.column_names]
    if missing and layout(dataset.column_names) in FORMATS:
        raise _wrong_source("hub", dataset_id, _columns(dataset))
    if missing:
        raise TutorialError(f"{dataset_id} に列 {missing} がありません。ある列: {_columns(dataset)}。"
                            "フォームの列名を直してください。")
    dropped += _matches(drop_if, dataset, dataset_id)
    matched, fix = {problem.row for problem in dropped}, _fix(dataset_id)
    for row in dataset.select_columns(wanted + ["_row"]):
        if row["_row"] in matched:
            continue
        empty = [problem for c in wanted if (problem := _missing(row[c], c, row["_row"], fix))]
        if len(empty) == len(wanted):
            dropped.append(Problem(row["_row"], "", "空の行です", fix))
        else:
            dropped += [problem for problem in empty if problem.column in (instruction, output)]
    list_dropped(_shown(dataset_id), dropped, numbering)
    gone = {problem.row for problem in dropped}
    dataset = dataset.filter(lambda row: row["_row"] not in gone)
    return _some(_take(_pairs(dataset, instruction, output, input), limit, seed).remove_columns("_row"), dataset_id)


# Field names of the two conversation layouts on the Hub: OpenAI-style `messages` and ShareGPT.
FORMATS = {
    "messages": dict(column="messages", role_key="role", content_key="content",
                     user="user", assistant="assistant", system="system"),
    "sharegpt": dict(column="conversations", role_key="from", content_key="value",
                     user="human", assistant="gpt", system="system"),
}
COLUMNS = [spec["column"] for spec in FORMATS.values()]


def layout(columns: list[str]) -> str | None:
    """What a file's columns hold: "messages" or "sharegpt" (conversations), "pairs" (instruction/output),
    "text" (a text column), else None."""
    found = next((name for name, spec in FORMATS.items() if spec["column"] in columns), None)
    return found or ("pairs" if {"instruction", "output"} <= set(columns) else "text" if "text" in columns else None)


def _columns(dataset: Dataset) -> list[str]:
    """The data set's own columns (without the row numbers `_load` adds)."""
    return [c for c in dataset.column_names if c != "_row"]


SOURCE_READS = {"csv": "instruction,output の見出しの CSV", "hub": "質問と答えの列があるデータ",
                "conversations": "会話の列があるデータ", "text": "ただの文章 (.txt)"}


def _wrong_source(source: str, given: str, columns: list[str] | None = None) -> TutorialError:
    """`given` (a file or Hub ID, as the learner wrote it) handed to the wrong SOURCE: what it holds, and
    which SOURCE (and field) reads it."""
    suffix = Path(given).suffix.lower()
    if columns is None and suffix in FILE_TYPES - {".csv"}:
        columns = _columns(_load(given, "train")[0])
    if suffix == ".csv" and source != "hub":
        kind = "csv"
    elif columns is not None:
        kind = layout(columns)
    else:
        kind = "text" if suffix in TEXT_TYPES else None
    local = " (Hub のデータセットでなくても、ローカルのファイルを読めます)" if _is_local(given) else ""
    what, fix = {
        "messages": ("OpenAI 形式 (列 messages) の会話のデータ",
                     f"SOURCE を conversations に、CONVERSATION_FORMAT を messages にして、CONVERSATIONS に {given} を書いてください"),
        "sharegpt": ("ShareGPT 形式 (列 conversations) の会話のデータ",
                     f"SOURCE を conversations に、CONVERSATION_FORMAT を sharegpt にして、CONVERSATIONS に {given} を書いてください"),
        "pairs": ("質問と答え (列 instruction / output) のデータ", f"SOURCE を hub にして、DATASET_ID に {given} を書いてください{local}"),
        "csv": ("CSV のファイル", f"SOURCE を csv にして、CSV_PATH に {given} を書いてください"),
        "text": ("文章のデータ" if columns else "ただの文章のファイル",
                 "列 text の文章を .txt のファイルに書き出し (段落の間は空行)、SOURCE を text に、TEXT_PATH にそのファイルを書いてください"
                 if columns else f"SOURCE を text にして、TEXT_PATH に {given} を書いてください"),
    }.get(kind, (f"列 {columns} のデータ" if columns else f"{suffix or '拡張子のない'} のファイル",
                 f"質問と答えの列があるなら、SOURCE を hub にして DATASET_ID に {given} を、"
                 "INSTRUCTION_COLUMN / OUTPUT_COLUMN にその列名を書いてください"))
    return refuse("SOURCE", source, f"{_shown(given)} は {what}です ({source} が読むのは、{SOURCE_READS[source]})", fix)


def load_conversations(dataset_id: str, split: str = "train", format: str = "messages", limit: int = 0,
                       seed: int = 42, drop_if: str = "", **names: str) -> Dataset:
    """Conversations from the Hub or a local file, as a `messages` column of role/content dicts.

    `format` is "messages" or "sharegpt"; `names` (column, role_key, content_key, user, assistant,
    system) override its field names where given. System messages are kept. Turns after the last
    assistant answer are dropped (nothing to learn from them); rows that cannot be used, or that
    `drop_if` removes, are listed.
    """
    if format not in FORMATS:
        raise refuse("CONVERSATION_FORMAT", format, "その形式はありません", f"{' か '.join(FORMATS)} にしてください")
    spec = FORMATS[format] | {key: value for key, value in names.items() if value}
    dataset, numbering, dropped = _load(dataset_id, split, "conversations")
    if spec["column"] not in dataset.column_names:
        found = layout(dataset.column_names)
        if found in FORMATS and not names.get("column"):
            raise refuse("CONVERSATION_FORMAT", format, f"{_shown(dataset_id)} は {found} 形式の会話のデータです "
                         f"(列 {FORMATS[found]['column']})", f"CONVERSATION_FORMAT を {found} にしてください")
        if found in ("pairs", "text"):
            raise _wrong_source("conversations", dataset_id, _columns(dataset))
        raise TutorialError(f"{dataset_id} に会話の列「{spec['column']}」がありません。ある列: {_columns(dataset)}。"
                            "フォームの会話の列名 (OpenAI 形式は messages、ShareGPT 形式は conversations) を直してください。")
    dropped += _matches(drop_if, dataset, dataset_id)
    matched = {problem.row for problem in dropped}
    roles = {spec["user"]: "user", spec["assistant"]: "assistant", spec["system"]: "system"}
    kept, trimmed = [], []
    for number, turns in zip(dataset["_row"], dataset[spec["column"]]):
        if number in matched:
            continue
        try:
            messages = _conversation(turns, spec, roles)
        except ValueError as problem:
            dropped.append(Problem(number, spec["column"], *problem.args))
            continue
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        if last + 1 < len(messages):
            trimmed.append(number)
        kept.append({"messages": messages[:last + 1]})
    list_dropped(_shown(dataset_id), dropped, numbering)
    if trimmed:
        print(f"次の {len(trimmed)} 行は最後の答えのあとに発言が続いていたので、最後の答えまでを使います"
              f" (行番号は{numbering}です): {rows_text(trimmed)} 行目")
    if not kept:
        raise TutorialError(f"{dataset_id} に使える会話が 1 つもありません。上の理由を見て、形式 (format) と"
                            "役割の名前 (USER_ROLE など) をデータに合わせてください。")
    return _take(Dataset.from_list(kept), limit, seed)


def _conversation(turns, spec: dict, roles: dict) -> list[dict]:
    """One row's turns as role/content dicts; ValueError(problem, fix) (in Japanese) says why a row can't be used."""
    shape = f'[{{"{spec["role_key"]}": 役割, "{spec["content_key"]}": 内容}}, ...] の形にしてください'
    if turns is None:
        raise ValueError(f"「{spec['column']}」がありません (その列がない行か、null)", f"{shape} (いらない行なら削除)")
    if not isinstance(turns, list) or not turns:
        raise ValueError("会話がメッセージのリストではありません", shape)
    messages = []
    for place, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict) or turn.get(spec["role_key"]) is None or spec["content_key"] not in turn:
            keys = [k for k, v in turn.items() if v is not None] if isinstance(turn, dict) else type(turn).__name__
            raise ValueError(f"{place} 番目のメッセージに「{spec['role_key']}」か「{spec['content_key']}」がありません "
                             f"(あるのは {keys})", "形式 (CONVERSATION_FORMAT) か ROLE_KEY / CONTENT_KEY をデータに合わせてください")
        role, content = turn[spec["role_key"]], turn[spec["content_key"]]
        if isinstance(content, (list, dict)):
            raise ValueError(f"{place} 番目のメッセージの内容が文字列ではありません (画像などを含む形式には対応していません)",
                             "文字だけの会話にするか、行を削除してください")
        content = _text(content)  # a number is kept as its digits
        if role not in roles:
            raise ValueError(f"{place} 番目のメッセージの役割「{role}」が USER_ROLE / ASSISTANT_ROLE / SYSTEM_ROLE "
                             f"({' / '.join(roles)}) のどれでもありません", "役割の名前 (USER_ROLE など) をデータに合わせてください")
        if not content:
            raise ValueError(f"{place} 番目のメッセージ ({role}) が空です", "内容を書くか、そのメッセージを削除してください")
        messages.append({"role": roles[role], "content": content})
    if not any(m["role"] == "assistant" for m in messages):
        raise ValueError("assistant の答えがありません", "答えのメッセージを足すか、行を削除してください")
    first = next(m["role"] for m in messages if m["role"] != "system")
    if first != "user":
        raise ValueError("最初の答えの前に user の発言がありません", "会話は user の発言から始めてください")
    return messages


def load_text(path: str | Path) -> Dataset:
    """A plain-text file as one row per paragraph (blank-line separated, or one per line); a paragraph of
    spaces alone (a full-width one, say) is no text, and is listed with its line."""
    if Path(path).suffix.lower() in FILE_TYPES:
        raise _wrong_source("text", str(path))
    path = locate(path)
    text = path.read_text(encoding="utf-8-sig")
    separator = "\n\n" if "\n\n" in text else "\n"
    paragraphs, blank, line = [], [], 1
    for part in text.split(separator):
        if part.strip():
            paragraphs.append(part.strip())
        elif part.strip("\n"):  # spaces, not only the newlines around paragraphs
            blank.append(Problem(line + len(part) - len(part.lstrip("\n")), "", "空白しかありません",
                                 "文章を書くか、その行を削除してください"))
        line += part.count("\n") + separator.count("\n")
    list_dropped(path.name, blank, "ファイルの行番号")
    if len(paragraphs) < 2:
        raise TutorialError(f"{path.name} には段落が {len(paragraphs)} つしかありません。"
                            "検証用に分けられるよう、空行で区切った段落を 2 つ以上にしてください。")
    return Dataset.from_dict({"text": paragraphs})


def continuations(texts: list[str], prompt_chars: int = 12, expected_chars: int = 30) -> tuple[list[str], list[str]]:
    """Text mode check: the opening of each text as a prompt, the next characters as the expectation."""
    return [t[:prompt_chars] for t in texts], [t[prompt_chars:prompt_chars + expected_chars] for t in texts]


def first(rows: Dataset, limit: int) -> Dataset:
    """The first `limit` rows (all when fewer): what 04 evaluates, so its time is bounded."""
    return rows.select(range(min(limit, len(rows))))


def is_text(splits: DatasetDict) -> bool:
    """True when notebook 02 prepared plain text (continued pre-training) rather than Q/A pairs."""
    return "text" in splits["train"].column_names


def trained_answers(rows: Dataset) -> list[str]:
    """Every answer the rows teach (all assistant turns of conversations), for the leak check."""
    return sorted({m["content"] for row in rows for m in row_messages(row) if m["role"] == "assistant"})


def last_turns(rows: Dataset) -> tuple[list[list[dict]], list[str], list[str]]:
    """What to ask and what to expect, per row: (prompts, expected answers, questions to show):
    everything before the last answer, the last answer, and the last user message."""
    conversations = [row_messages(row) for row in rows]
    return ([c[:-1] for c in conversations], [c[-1]["content"] for c in conversations],
            [next(m["content"] for m in reversed(c) if m["role"] == "user") for c in conversations])


def split(dataset: Dataset, validation_ratio: float, seed: int = 42) -> DatasetDict:
    """Reproducible train/validation split (the same seed gives the same rows)."""
    validation = math.ceil(len(dataset) * validation_ratio)  # as `train_test_split` counts
    if validation < 1 or validation >= len(dataset):
        raise refuse("VALIDATION_RATIO", validation_ratio, f"{len(dataset)} 行を、検証用 {validation_ratio:.0%} と学習用に分けられません"
                     " (どちらかが 0 行になります)", "行を増やすか (少なくとも 2 行、ふつうは数十行以上)、VALIDATION_RATIO を変えてください")
    parts = dataset.train_test_split(test_size=validation_ratio, seed=seed)
    return DatasetDict(train=parts["train"], validation=parts["test"])


@functools.cache
def _general() -> Dataset:
    """`datasets/general_qa_ja.csv`: general questions and answers (ours, checked by `make test`)."""
    return Dataset.from_pandas(pd.read_csv(GENERAL_QA, keep_default_na=False), preserve_index=False)


def mix_general(splits: DatasetDict, rows: int, seed: int = DEFAULT_SEED) -> DatasetDict:
    """`rows` general questions and answers (drawn from `datasets/general_qa_ja.csv` with `seed`) added to
    the training split ("replay"): the model keeps answering other questions from its own knowledge instead
    of with a trained answer. Validation stays the learner's data alone; text data is left as it is, and so
    is data whose answers have a form of their own (an ending such as 「だにゃ。」, or bare numbers) that the
    general answers (sentences ending 「です。」) would teach against."""
    if not rows or is_text(splits):
        return splits
    answers = trained_answers(splits["train"])
    ending = style_ending(answers)
    if ending and ending[-2:] != style_ending(_general()["output"])[-2:]:  # how a sentence ends: す。 polite, にゃ。 a cat's
        print(f"学習用の答えが「{ending}」で終わる口調なので、一般的な質問 (「です。」で終わる答え) は混ぜません"
              "(混ぜると、その口調で答えないことも学んでしまいます)。")
        return splits
    if sum(bool(re.fullmatch(r"-?[\d.,]+", normalize(a))) for a in answers) >= 0.8 * len(answers):
        print("学習用の答えのほとんどが数だけなので、一般的な質問 (文で答える) は混ぜません"
              "(混ぜると、数だけで答えることを学びにくくなります)。")
        return splits
    general = _general().shuffle(seed=seed)
    general = general.select(range(min(rows, len(general))))
    if "messages" in splits["train"].column_names:  # conversations: each pair as a one-turn conversation
        general = general.map(lambda r: {"messages": qa_messages(r["instruction"], r["output"])},
                              remove_columns=general.column_names)
    print(f"一般的な質問と答えを {len(general)} 行、学習用に混ぜました ({GENERAL_QA.name} から。学習用だけに混ぜ、確かめる質問には混ぜません)。")
    return DatasetDict(train=concatenate_datasets([splits["train"], general.cast(splits["train"].features)]),
                       validation=splits["validation"])


def is_general(rows: Dataset) -> list[bool]:
    """Per row: whether it is one of the general questions `mix_general` adds (not the learner's data)."""
    if "text" in rows.column_names:
        return [False] * len(rows)
    questions = set(_general()["instruction"])
    return [question in questions for question in last_turns(rows)[2]]


def own_rows(rows: Dataset) -> Dataset:
    """The learner's rows, without the general ones `mix_general` added."""
    return rows.select([i for i, general in enumerate(is_general(rows)) if not general])


def general_text() -> list[str]:
    """Short sentences of general knowledge (`datasets/tiny_corpus_ja.txt`), whose perplexity 04 compares as a
    measure of general ability: tuning that breaks the model's Japanese or its knowledge raises it."""
    return [line for line in GENERAL_TEXT.read_text(encoding="utf-8").splitlines() if line.strip()]


def general_questions(train: Dataset) -> tuple[list[str], list[str]]:
    """(questions, answers) of the general rows not mixed into `train`: 04 asks them at every epoch to see
    whether a trained answer leaks into questions the data is not about."""
    trained = set(last_turns(train)[2])
    rows = [r for r in _general() if r["instruction"] not in trained]
    return [r["instruction"] for r in rows], [r["output"] for r in rows]


@japanese_errors("02 の出力 (prepared/) の保存")
def save_prepared(splits: DatasetDict, out: Path, settings: dict | None = None) -> Path:
    """`prepared/train.jsonl` and `validation.jsonl`, each written whole (see `artefacts`), and the
    MODEL and MAX_LENGTH they were checked with, which 03 then takes as its defaults."""
    folder = Path(out) / artefacts.PREPARED
    for name, part in splits.items():
        with artefacts.writing(folder / f"{name}.jsonl") as partial:
            part.to_json(partial, force_ascii=False)
    if settings:
        artefacts.save(folder / artefacts.PREPARED_SETTINGS, settings)
    elif is_writer():  # 02's defaults, prepared without 02: nothing 02 decided
        (folder / artefacts.PREPARED_SETTINGS).unlink(missing_ok=True)
    return folder


def model_of_01(out: Path) -> dict:
    """{"MODEL": the model 01 answered with}, or {} when 01 has not run (for 02's "01 と同じ")."""
    try:
        models = pd.read_csv(Path(out) / artefacts.BASELINE, keep_default_na=False)["model"].unique()
    except (OSError, KeyError, ValueError):
        models = []
    return {"MODEL": models[0]} if len(models) == 1 else {}


def recorded_settings(out: Path) -> dict:
    """The MODEL and MAX_LENGTH 02 recorded ({} when it recorded none)."""
    path = Path(out) / artefacts.PREPARED / artefacts.PREPARED_SETTINGS
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def load_prepared(out: Path, prepare_default: bool = False) -> DatasetDict:
    """What notebook 02 saved. When none of it is there (in Colab: 02 ran in another runtime without
    Drive) and `prepare_default`, 02's default data is prepared as 02 would, saying so; else stop."""
    folder = Path(out) / artefacts.PREPARED
    files = {name.split(".")[0]: folder / name for name in artefacts.PREPARED_FILES}
    if prepare_default and not any(path.exists() for path in files.values()) and not is_writer():
        artefacts.wait_for(list(files.values()))  # `accelerate launch`: the first process prepares them
    elif prepare_default and not any(path.exists() for path in files.values()):
        print(f"02 の出力 ({folder}) がないので、02 の既定の設定で用意します: {DEFAULT_DATA.name}、"
              f"検証用 {DEFAULT_VALIDATION_RATIO:.0%}、SEED {DEFAULT_SEED}、一般的な質問 {DEFAULT_GENERAL_ROWS} 行。"
              "自分のデータを使うときは、先に 02 を実行してください。"
              "Colab では USE_GOOGLE_DRIVE をオンにして実行すると、02 の結果が Drive を通ってこのノートブックに届きます。")
        splits = split(load_csv(DEFAULT_DATA), DEFAULT_VALIDATION_RATIO, seed=DEFAULT_SEED)
        save_prepared(mix_general(splits, DEFAULT_GENERAL_ROWS, seed=DEFAULT_SEED), out)
    return held_out(load_dataset("json", data_files={name: str(require(path, "02_build_dataset.ipynb"))
                                                     for name, path in files.items()}))


def held_out(splits: DatasetDict) -> DatasetDict:
    """02's validation rows in two halves (every other row): `validation` chooses (03's validation loss, 04's
    epoch), `heldout` reports before/after on questions that chose nothing. With one row, that row does both."""
    rows = splits["validation"]
    if len(rows) < 2:
        print("検証用が 1 行だけなので、エポックを選ぶのにも学習前後を確かめるのにも同じ行を使います"
              "(確かめた数字は良く出すぎます。02 で VALIDATION_RATIO を上げるか、データを増やしてください)。")
        return DatasetDict(train=splits["train"], validation=rows, heldout=rows)
    return DatasetDict(train=splits["train"], validation=rows.select(range(0, len(rows), 2)),
                       heldout=rows.select(range(1, len(rows), 2)))


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "check":
        print(__doc__.strip().splitlines()[-1].strip())
        return 2
    if Path(argv[1]).suffix.lower() == ".csv":  # a spreadsheet CSV: every problem with its row
        report = csvfile.check(argv[1])
        print(report.describe())
        print("使えます。" if report.ok else "このままでは使えません。上の行を直してください。")
        return 0 if report.ok else 1
    if Path(argv[1]).suffix.lower() not in FILE_TYPES:
        print(f"{Path(argv[1]).name}: 調べられるのは {' / '.join(sorted(FILE_TYPES))} のファイルです。")
        return 1
    try:  # JSON lines / JSON / parquet: read as 02 reads them (pairs, or conversations by their column)
        loaded = _load(argv[1], "train")[0]
        kind = layout(loaded.column_names)
        rows = (load_conversations(argv[1], format=kind) if kind in FORMATS
                else load_hub(argv[1], input="input" if "input" in loaded.column_names else ""))
    except TutorialError as problem:
        print(f"このままでは使えません: {problem}")
        return 1
    print(f"{Path(argv[1]).name}: {kind if kind in FORMATS else 'instruction/output'} の形式で、{len(loaded)} 行のうち使える行 {len(rows)}。")
    if len(rows) < len(loaded):
        print("このままでは使えない行があります。上の一覧の行を直してください (02 ではその行を除いて進みます)。")
        return 1
    print("使えます。")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
