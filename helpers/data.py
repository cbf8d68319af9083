"""Load instruction/output data (own CSV or a Hub / local data set), check it, split, save."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from datasets import Dataset, DatasetDict, load_dataset

from .env import require
from .errors import TutorialError

COLUMNS = ["instruction", "output"]
PREPARED = "prepared"


def load_csv(path: str | Path) -> Dataset:
    """Read an `instruction,output` CSV (UTF-8, with or without BOM); refuse it listing every problem."""
    path = Path(path)
    if not path.is_file():
        raise TutorialError(f"CSV ファイル {path} が見つかりません。パスを確認してください。")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TutorialError(f"{path.name} は UTF-8 ではありません。Excel なら「CSV UTF-8 (コンマ区切り)」で"
                            "保存し直してください。") from exc
    except pd.errors.ParserError as exc:
        raise TutorialError(f"{path.name} を CSV として読めません ({exc})。その行の列の数と、"
                            "\" で囲んだセルの閉じ忘れを表計算ソフトで確かめてください。") from exc
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise TutorialError(
            f"{path.name}: 1 行目 (見出し) に列 {missing} がありません。見つかった列: {list(frame.columns)}。"
            "見出しを instruction,output にしてください (datasets/template.csv がひな形です)。")
    problems = []
    for index, row in frame.iterrows():
        for column in COLUMNS:
            if not row[column].strip():
                problems.append(f"- {index + 2} 行目の {column}: 空です → 値を入れるか、その行を削除してください")
    if problems:
        raise TutorialError(f"{path.name} に {len(problems)} 件の問題があります "
                            "(行番号は表計算ソフトで見える番号です):\n" + "\n".join(problems))
    return Dataset.from_pandas(frame[COLUMNS].apply(lambda col: col.str.strip()), preserve_index=False)


def load_hub(dataset_id: str, split: str = "train", instruction: str = "instruction",
             output: str = "output", input: str = "", limit: int = 0, seed: int = 42) -> Dataset:
    """A Hub data set (or a local .json/.jsonl/.csv/.parquet file) mapped to instruction/output.

    `input`, when given, is appended to the instruction on a new line. `limit` > 0 keeps a
    reproducible random subset of that many rows.
    """
    suffix = Path(dataset_id).suffix.lstrip(".")
    builder = {"jsonl": "json"}.get(suffix, suffix)
    try:
        if Path(dataset_id).is_file():
            dataset = load_dataset(builder, data_files=dataset_id, split=split)
        else:
            dataset = load_dataset(dataset_id, split=split)
    except (ConnectionError, OSError) as exc:
        raise TutorialError(f"データセット {dataset_id!r} を読み込めませんでした。ID のつづりとネットワーク接続を"
                            f"確認してください (元のエラー: {str(exc).splitlines()[0]})") from exc
    wanted = {"instruction": instruction, "output": output} | ({"input": input} if input else {})
    missing = {role: name for role, name in wanted.items() if name not in dataset.column_names}
    if missing:
        raise TutorialError(f"{dataset_id} に列 {list(missing.values())} がありません。"
                            f"ある列: {dataset.column_names}。フォームの列名を直してください。")
    def to_pair(row):
        question = str(row[instruction] or "").strip()
        if input and str(row[input] or "").strip():
            question += "\n" + str(row[input]).strip()
        return {"instruction": question, "output": str(row[output] or "").strip()}

    dataset = dataset.map(to_pair, remove_columns=dataset.column_names)
    empty = [i for i, row in enumerate(dataset) if not row["instruction"] or not row["output"]]
    if empty:
        print(f"instruction か output が空なので {len(empty)} 行を除きました "
              f"(元のデータの行番号、0 始まり): {empty[:20]}{' …' if len(empty) > 20 else ''}")
        dataset = dataset.select(sorted(set(range(len(dataset))) - set(empty)))
    if limit and limit < len(dataset):
        dataset = dataset.shuffle(seed=seed).select(range(limit))
    return dataset


def split(dataset: Dataset, validation_ratio: float, seed: int = 42) -> DatasetDict:
    """Reproducible train/validation split (the same seed gives the same rows)."""
    parts = dataset.train_test_split(test_size=validation_ratio, seed=seed)
    return DatasetDict(train=parts["train"], validation=parts["test"])


def save_prepared(splits: DatasetDict, out: Path) -> Path:
    folder = Path(out) / PREPARED
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in splits.items():
        part.to_json(folder / f"{name}.jsonl", force_ascii=False)
    return folder


def load_prepared(out: Path) -> DatasetDict:
    """What notebook 02 saved; says to run 02 first when it is missing."""
    folder = Path(out) / PREPARED
    files = {name: str(require(folder / f"{name}.jsonl", "02_build_dataset.ipynb"))
             for name in ("train", "validation")}
    return load_dataset("json", data_files=files)
