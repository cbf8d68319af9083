"""General Japanese ability before and after tuning, on ELYZA-tasks-100: the answers side by side, the
reference answers' perplexity (no judge needed), and optionally a judge (any OpenAI-compatible endpoint)
scoring each answer 1–5 with the task's own grading notes (`eval_aspect`), as ELYZA-tasks-100 is graded."""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from contextlib import nullcontext
from dataclasses import dataclass, field

import pandas as pd

from . import REPO_ROOT
from .env import secret
from .errors import TutorialError
from .generation import answer, answer_perplexity
from .prompts import prompt_ids, qa_messages, training_example

TASKS = REPO_ROOT / "datasets" / "elyza_tasks_100.jsonl"
COLUMNS = ["task", "input", "reference", "before", "after", "perplexity_before", "perplexity_after",
           "judge_before", "judge_after"]
MAX_NEW_TOKENS = 256  # the tasks ask for lists, stories, explanations: longer answers than a fact
JUDGE = ("JUDGE_BASE_URL", "JUDGE_MODEL", "JUDGE_API_KEY")
# The judge's instructions, in the way ELYZA-tasks-100 is graded: the task, its reference answer and grading notes.
JUDGE_PROMPT = """次の問題への回答を 1〜5 の整数で採点してください。
5: 正確で、指示どおりで、役に立つ。4: おおむね良いが小さな問題がある。3: 部分的に正しい、または指示に一部従っていない。
2: 誤りが多い、または指示にほとんど従っていない。1: 誤り、無関係、または日本語として不自然。
そのうえで、下の採点基準 (この問題で見るところと減点) に従って点数を決めます。

# 問題
{input}

# 模範解答
{reference}

# 採点基準
{eval_aspect}

# 採点する回答
{answer}

最後の行に「点数: 」に続けて 1〜5 の整数を 1 つだけ書いてください。"""


def tasks(count: int, tokenizer=None, limit: int | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The first `count` tasks that fit the model (question and reference answer within `limit` tokens,
    room to answer), numbered from 1 as in the set, and each task passed over as 「問 N (T トークン)」."""
    raw = TASKS.read_bytes()
    if hashlib.sha256(raw).hexdigest() != TASKS.with_name(TASKS.name + ".sha256").read_text().strip():
        raise TutorialError(f"{TASKS.name} の中身が、確かめた版と違います (sha256 が一致しません)。"
                            "リポジトリから取り直してください。")
    rows, passed = [], []
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if len(rows) == count:
            break
        task = json.loads(line)
        if tokenizer is not None and limit:
            whole = len(training_example(tokenizer, qa_messages(task["input"], task["output"]))["input_ids"])
            question = len(prompt_ids(tokenizer, task["input"]))
            if whole > limit or question + 16 > limit:
                passed.append(f"問 {number} ({whole} トークン)")
                continue
        rows.append({"task": number, "input": task["input"], "reference": task["output"],
                     "eval_aspect": task["eval_aspect"]})
    return pd.DataFrame(rows), passed


def compare(model, tokenizer, count: int, judge: "Judge | None" = None, answers: bool = True) -> pd.DataFrame:
    """`count` tasks with the adapter off (before) and on (after): the answers (unless `answers` is off),
    the reference answer's perplexity, and the judge's scores when a judge is given (otherwise empty)."""
    limit = (getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
             or tokenizer.model_max_length)
    table, passed = tasks(count, tokenizer, limit)
    if passed:
        print(f"このモデルが一度に読める {limit} トークンに、質問と模範解答が入らないので飛ばした問"
              f" ({len(passed)} 問): {'、'.join(passed)}")
    if table.empty:
        return pd.DataFrame(columns=COLUMNS)
    prompts, references = list(table["input"]), list(table["reference"])
    longest = max(len(prompt_ids(tokenizer, p)) for p in prompts)
    new_tokens = min(MAX_NEW_TOKENS, limit - longest) if limit else MAX_NEW_TOKENS
    result = {}
    for when, label in (("before", "学習前"), ("after", "学習後")):
        with model.disable_adapter() if when == "before" else nullcontext():
            result[f"perplexity_{when}"] = [answer_perplexity(model, tokenizer, [p], [r])
                                            for p, r in zip(prompts, references)]
            result[when] = (answer(model, tokenizer, prompts, max_new_tokens=new_tokens,
                                   progress=f"ELYZA-tasks-100 {label}") if answers else [""] * len(prompts))
    table = table.assign(**result)
    judged = scored(judge, table) if judge and answers else {}
    for when in ("before", "after"):  # empty cells without a judge (not "None" in the table and the CSV)
        table[f"judge_{when}"] = ["" if s is None else s for s in judged.get(when, [None] * len(table))]
    return table[COLUMNS + ["eval_aspect"]]


def reading(table: pd.DataFrame) -> str:
    """The summary line: the reference answers' perplexity before → after, and what that means, in plain Japanese."""
    if table.empty:
        return "ELYZA-tasks-100: このモデルに入る問題がありませんでした。"
    before, after = table["perplexity_before"].median(), table["perplexity_after"].median()
    change = after / before - 1
    rose = int((table["perplexity_after"] > table["perplexity_before"] * 1.1).sum())
    line = (f"ELYZA-tasks-100 の {len(table)} 問: 模範解答の perplexity (中央値) {before:.1f} → {after:.1f} ({change:+.0%})、"
            f"1 割より大きく上がった問 {rose}/{len(table)}。")
    if change <= -0.1:
        line += "下がりました: 模範解答のような日本語に、学習前より慣れています (一般的な力は落ちていません)。"
    elif change < 0.1:
        line += "ほぼ変わっていません: 一般的な日本語の力は保たれています。"
    elif change < 0.5:
        line += "少し上がりました: 一般的な日本語の力が少し落ちています。"
    else:
        line += ("大きく上がりました: 学習したデータの答え方に寄って、一般的な日本語の力が落ちています"
                 " (短い答えだけを学習すると、長い文章の perplexity はそれだけでも上がります。答えの列も見て、"
                 "崩れていればエポック数か学習率を下げます)。")
    judged = table[["judge_before", "judge_after"]].apply(pd.to_numeric, errors="coerce").dropna()
    if len(judged):  # the tasks scored both before and after
        line += (f" 採点 (1〜5 の平均、両方採点できた {len(judged)} 問): {judged['judge_before'].mean():.2f}"
                 f" → {judged['judge_after'].mean():.2f}。")
    return line


@dataclass
class Judge:
    """An OpenAI-compatible endpoint that scores answers (its key is never shown)."""
    base_url: str
    model: str
    api_key: str = field(repr=False)


def judge_from_environment() -> "Judge | None":
    """The judge named by JUDGE_BASE_URL / JUDGE_MODEL / JUDGE_API_KEY (environment, or Colab's secrets); None if unset."""
    base_url, model, key = (secret(name) for name in JUDGE)
    if not base_url:
        return None
    if not model:
        print("JUDGE_BASE_URL はありますが JUDGE_MODEL がありません。採点に使うモデルの名前を、"
              "同じところ (Colab のシークレットか環境変数) に入れてください。今回は採点なしで続けます。")
        return None
    return Judge(base_url, model, key or "none")


def score_of(text: str) -> int | None:
    """The judge's score: after its last 「点数:」, else the one number in its reply; 1 to 5 (full-width too), else None."""
    text = unicodedata.normalize("NFKC", text)
    marked = re.findall(r"点数\s*:\s*(\d+)", text)
    numbers = marked[-1:] or list(set(re.findall(r"\d+", text)))
    return int(numbers[0]) if len(numbers) == 1 and numbers[0] in set("12345") else None


def scored(judge: Judge, table: pd.DataFrame, columns=("before", "after")) -> dict[str, list]:
    """The judge's score for each answer in `columns`; at the first fault, said once in Japanese, the rest stay None."""
    import openai
    client = openai.OpenAI(base_url=judge.base_url, api_key=judge.api_key, timeout=120, max_retries=3)
    where = f"採点用のモデル ({judge.base_url})"
    faults = {openai.AuthenticationError: f"{where} に API キーを断られました (401)。JUDGE_API_KEY を確かめてください。",
              openai.NotFoundError: f"{where} に、JUDGE_MODEL のモデル ({judge.model}) がありません (404)。名前を確かめてください。",
              openai.RateLimitError: f"{where} の回数の上限か混雑で断られました (429)。時間をおいて、もう一度実行してください。",
              openai.APITimeoutError: f"{where} が時間内に答えませんでした。時間をおいて、もう一度実行してください。",
              openai.APIConnectionError: f"{where} につながりませんでした。JUDGE_BASE_URL とネット接続を確かめてください。",
              openai.APIStatusError: f"{where} がエラーを返しました。"}
    scores = {when: [None] * len(table) for when in columns}
    for i, row in enumerate(table.itertuples()):
        for when in columns:
            prompt = JUDGE_PROMPT.format(input=row.input, reference=row.reference, eval_aspect=row.eval_aspect,
                                         answer=getattr(row, when))
            try:
                reply = client.chat.completions.create(model=judge.model, temperature=0,
                                                       messages=[{"role": "user", "content": prompt}])
            except tuple(faults) as exc:
                kind = next(kind for kind in faults if isinstance(exc, kind))
                code = f" (HTTP {exc.status_code})" if kind is openai.APIStatusError else ""
                print(f"{faults[kind]}{code} 採点なしで続けます。")
                return scores
            text = (reply.choices[0].message.content or "") if reply.choices else ""
            scores[when][i] = score_of(text)
            if scores[when][i] is None:
                print(f"問 {row.task} ({'学習前' if when == 'before' else '学習後'}): 採点用のモデルの答え「{text[:40]}」から"
                      " 1〜5 の点数を読み取れなかったので、空欄にします。")
    return scores
