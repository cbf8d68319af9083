"""Read and check an instruction/output CSV the way a beginner's spreadsheet writes it.

Rows are numbered as a spreadsheet shows them (the header is row 1; a quoted cell with line
breaks stays one row). Every problem names its row, column and fix; nothing is dropped
without being listed.
"""
from __future__ import annotations

import csv
import difflib
import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .errors import Problem

csv.field_size_limit(2**31 - 1)  # a long answer in one cell (the default stops at 131,072 characters)
REQUIRED = ["instruction", "output"]
OPTIONAL = ["input"]
ENCODINGS = [("utf-8-sig", "UTF-8"), ("cp932", "Shift_JIS (CP932)")]


@dataclass
class CsvReport:
    path: Path
    encoding: str = ""
    columns: dict[str, int] = field(default_factory=dict)  # role -> column index
    rows: list[dict] = field(default_factory=list)          # usable rows: row, instruction, input, output
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)          # not problems, but worth saying
    fatal: bool = False                                     # no row can be read at all

    @property
    def ok(self) -> bool:
        return not self.problems

    def table(self) -> pd.DataFrame:
        """Every problem as a table: spreadsheet row, column, what is wrong, how to fix it."""
        return pd.DataFrame([vars(p) for p in self.problems], columns=["row", "column", "problem", "fix"]).rename(
            columns={"row": "行", "column": "列", "problem": "問題", "fix": "直し方"})

    def describe(self) -> str:
        lines = [f"{self.path.name}: 文字コード {self.encoding or '不明'}, 使える行 {len(self.rows)}, 問題 {len(self.problems)} 件"]
        lines += [f"  ・{note}" for note in self.notes]
        if self.rows:
            for column in REQUIRED:
                lengths = pd.Series([len(r[column]) for r in self.rows])
                lines.append(f"  {column} の文字数: 最小 {lengths.min()}, 平均 {lengths.mean():.1f}, 最大 {lengths.max()}")
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)


def _decode(raw: bytes) -> tuple[str, str]:
    for codec, name in ENCODINGS:
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError:
            continue
        if codec == "utf-8-sig" and raw.startswith(b"\xef\xbb\xbf"):
            name = "UTF-8 (BOM 付き)"
        return text, name
    raise UnicodeDecodeError("csv", raw, 0, 1, "not UTF-8 or CP932")


def _header(cells: list[str], report: CsvReport) -> None:
    names = [c.strip().lower() for c in cells]
    for role in REQUIRED + OPTIONAL:
        if role in names:
            report.columns[role] = names.index(role)
    for index, name in enumerate(names):
        if index in report.columns.values():
            continue
        close = difflib.get_close_matches(name, [r for r in REQUIRED + OPTIONAL if r not in report.columns], n=1, cutoff=0.6)
        if close:
            report.problems.append(Problem(1, cells[index], f"見出し「{cells[index]}」はつづりが違うようです",
                                           f"「{close[0]}」に直してください"))
        else:
            report.notes.append(f"列「{cells[index] or '(名前なし)'}」は使いません (学習に使うのは instruction, input, output だけです)")
    missing = [r for r in REQUIRED if r not in report.columns]
    if missing and not any(p.row == 1 for p in report.problems):
        report.problems.append(Problem(1, ",".join(missing), f"見出しに {missing} がありません (見出し: {cells})",
                                       "1 行目を instruction,output にしてください (datasets/template.csv がひな形です)"))
    report.fatal = bool(missing)


def overfull(number: int, cells: list[str], width: int) -> Problem | None:
    """A row with text past the header's last column (a comma left unquoted), or None."""
    if len(cells) > width and any(c.strip() for c in cells[width:]):
        return Problem(number, "", f"セルが {len(cells)} 個あり、見出しの {width} 個より多いです",
                       "答えにコンマ (,) を含むときは、セル全体を \"\" で囲んでください")
    return None


def check(path: str | Path) -> CsvReport:
    """Read `path` (UTF-8 with or without BOM, or Shift_JIS) and list every problem with its row."""
    report = CsvReport(Path(path))
    if not report.path.is_file():
        report.problems.append(Problem(0, "", f"ファイル {path} が見つかりません", "パスを確認してください"))
        report.fatal = True
        return report
    try:
        text, report.encoding = _decode(report.path.read_bytes())
    except UnicodeDecodeError:
        report.problems.append(Problem(0, "", "文字コードを読み取れません (UTF-8 でも Shift_JIS でもありません)",
                                       "Excel なら「CSV UTF-8 (コンマ区切り)」で保存し直してください"))
        report.fatal = True
        return report
    records = list(csv.reader(io.StringIO(text, newline="")))
    if not records:
        report.problems.append(Problem(1, "", "ファイルが空です", "見出し instruction,output と、データの行を書いてください"))
        report.fatal = True
        return report
    _header(records[0], report)
    if report.fatal:
        return report
    _rows(records, report)
    if not report.rows and not report.problems:
        report.problems.append(Problem(2, "", "見出しの下にデータの行がありません", "見出しの下に 質問,答え の行を書いてください"))
        report.fatal = True
    return report


def _rows(records: list[list[str]], report: CsvReport) -> None:
    width = len(records[0])
    seen: dict[tuple, int] = {}
    parsed = []
    for number, cells in enumerate(records[1:], start=2):
        cells = cells + [""] * (width - len(cells))
        raw = {role: cells[index] for role, index in report.columns.items()}
        parsed.append((number, cells, raw))
    broken = set()
    for (number, cells, raw), following in zip(parsed, parsed[1:] + [None]):
        # the FAQ's layout: the question on one line and ",answer" on the next
        if following and raw["instruction"].strip() and not raw["output"].strip():
            nxt = following[2]
            if not nxt["instruction"].strip() and nxt["output"].strip():
                report.problems.append(Problem(number, "output", f"答えが次の {number + 1} 行目に分かれています",
                                               f"{number + 1} 行目の答えをこの行の output に移し、{number + 1} 行目を削除してください "
                                               "(セル内で改行した答えは \"\" で囲まれていれば 1 行として読めます)"))
                report.problems.append(Problem(number + 1, "instruction", f"{number} 行目の答えが分かれてできた行です",
                                               f"{number} 行目と 1 行にまとめてください"))
                broken |= {number, number + 1}
    for number, cells, raw in parsed:
        if number in broken:
            continue
        found = [problem for problem in [overfull(number, cells, width)] if problem]
        if not any(c.strip() for c in cells):
            found.append(Problem(number, "", "空の行です", "行を削除してください"))
        else:
            for role in REQUIRED:
                if not raw[role]:
                    found.append(Problem(number, role, "空です", "値を入れるか、行を削除してください"))
                elif not raw[role].strip():
                    found.append(Problem(number, role, "空白しかありません", "値を入れるか、行を削除してください"))
        key = tuple(v.strip() for v in raw.values())
        if not found and key in seen:
            found.append(Problem(number, "", f"{seen[key]} 行目とまったく同じです",
                                 "重複を削除してください (同じ行を増やすより、エポック数を増やす方が確実です)"))
        seen.setdefault(key, number)
        report.problems += found
        if not found:
            report.rows.append({"row": number} | {role: raw.get(role, "").strip() for role in REQUIRED + OPTIONAL})
