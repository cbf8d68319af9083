"""General ability on ELYZA-tasks-100: the tasks that fit, the perplexity signal, and a judge over real HTTP."""
import json
import threading
import time

import pandas as pd
import pytest
import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from helpers import general
from helpers.errors import TutorialError
from helpers.prompts import qa_messages, training_example
from ports import free_port

pytestmark = pytest.mark.colab  # run under Colab's versions too (its openai and FastAPI)
KEY = "sk-judge-secret-123"


@pytest.mark.unit
def test_the_set_is_elyzas_hundred_tasks_unchanged(tmp_path, monkeypatch):
    table, passed = general.tasks(100)
    assert len(table) == 100 and passed == [] and list(table["task"]) == list(range(1, 101))
    assert table["input"][0] == "仕事の熱意を取り戻すためのアイデアを5つ挙げてください。"
    assert table[["input", "reference", "eval_aspect"]].map(str.strip).ne("").all(axis=None)
    changed = tmp_path / general.TASKS.name
    changed.write_bytes(general.TASKS.read_bytes().replace("クマ".encode(), "ネコ".encode()))
    (tmp_path / (changed.name + ".sha256")).write_bytes(general.TASKS.with_name(changed.name + ".sha256").read_bytes())
    monkeypatch.setattr(general, "TASKS", changed)
    with pytest.raises(TutorialError, match="sha256"):
        general.tasks(3)


def test_only_tasks_that_fit_the_model_are_asked_and_each_one_passed_over_is_named(tiny_tokenizer):
    table, passed = general.tasks(5, tiny_tokenizer, limit=256)
    assert len(table) == 5 and passed and all(line.startswith("問 ") and line.endswith(" トークン)") for line in passed)
    skipped = {int(line.split()[1]) for line in passed}
    assert not skipped & set(table["task"]) and max(table["task"]) == 5 + len(skipped)  # the first five that fit, in order
    assert general.tasks(5, tiny_tokenizer, limit=100_000)[0]["task"].tolist() == [1, 2, 3, 4, 5]


@pytest.fixture
def adapted(tiny_path):
    """The tiny model with a fresh LoRA adapter (B = 0: the same model until trained)."""
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_path),
                           LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    return model, AutoTokenizer.from_pretrained(tiny_path)


def test_an_adapter_that_changes_nothing_reads_as_no_change_and_one_trained_on_the_answers_as_a_fall(adapted, capsys):
    model, tokenizer = adapted
    same = general.compare(model, tokenizer, 3)
    assert list(same.columns[:9]) == general.COLUMNS and (same[["judge_before", "judge_after"]] == "").all(axis=None)
    assert same["perplexity_after"].tolist() == pytest.approx(same["perplexity_before"].tolist(), rel=1e-4)
    assert same["before"].tolist() == same["after"].tolist() and same["after"].str.len().gt(0).all()
    assert "ほぼ変わっていません" in general.reading(same)
    assert "入らないので飛ばした問" in capsys.readouterr().out  # tiny reads 256 tokens: the long tasks are named
    # a control that must move: the adapter trained a few steps on these very reference answers
    optimizer = torch.optim.AdamW([w for n, w in model.named_parameters() if "lora_" in n], lr=3e-3)
    model.train()
    for _ in range(15):
        for question, reference in zip(same["input"], same["reference"]):
            example = training_example(tokenizer, qa_messages(question, reference))
            loss = model(input_ids=torch.tensor([example["input_ids"]]), labels=torch.tensor([example["labels"]])).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    moved = general.compare(model, tokenizer, 3, answers=False)
    assert (moved["perplexity_after"] < moved["perplexity_before"] / 2).all()
    assert moved["perplexity_before"].tolist() == pytest.approx(same["perplexity_before"].tolist(), rel=1e-4)
    assert "下がりました" in general.reading(moved) and moved["after"].eq("").all()


class Stub:
    """An OpenAI-compatible judge on 127.0.0.1 (FastAPI under uvicorn): checks the key, replies `reply`."""

    def __init__(self):
        self.reply, self.prompts, app = "4", [], FastAPI()

        @app.post("/v1/chat/completions")
        async def complete(request: Request):
            if request.headers.get("authorization") != f"Bearer {KEY}":
                return JSONResponse({"error": {"message": f"bad key {request.headers.get('authorization')}",  # echoed
                                               "type": "invalid_request_error"}}, status_code=401)
            body = await request.json()
            if body["model"] != "judge-model":
                return JSONResponse({"error": {"message": "no such model", "type": "invalid_request_error"}}, status_code=404)
            self.prompts.append(body["messages"][-1]["content"])
            return {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": self.reply}}]}
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        threading.Thread(target=self.server.run, daemon=True).start()
        while not self.server.started:
            time.sleep(0.05)

    def judge(self, key=KEY, port=None, model="judge-model"):
        return general.Judge(f"http://127.0.0.1:{port or self.port}/v1", model, key)


@pytest.fixture(scope="module")
def stub():
    server = Stub()
    yield server
    server.server.should_exit = True


def rows(count=2):
    table, _ = general.tasks(count)
    return table.assign(before=["答え"] * count, after=["別の答え"] * count)


def test_the_judge_scores_each_answer_with_the_tasks_grading_notes_over_http(stub, capsys):
    stub.reply, stub.prompts[:] = "4", []
    table = rows()
    assert general.scored(stub.judge(), table, ["after"]) == {"after": [4, 4]}
    assert len(stub.prompts) == 2 and table["eval_aspect"][0] in stub.prompts[0] and "別の答え" in stub.prompts[0]
    stub.reply = "1. 指示どおり。2. 正確。\n点数: ４"  # the marked line wins over the numbered reasons, full-width read
    assert general.scored(stub.judge(), rows(1), ["before"])["before"] == [4]
    stub.reply = "とても良い回答です。"  # no score: that answer left empty, said in Japanese
    assert general.scored(stub.judge(), rows(), ["before"])["before"] == [None, None]
    assert "点数を読み取れなかった" in capsys.readouterr().out
    stub.reply = "3 か 4 です"  # two numbers, no mark: no score
    assert general.scored(stub.judge(), rows(1), ["before"])["before"] == [None]
    stub.reply = "4"


@pytest.mark.parametrize("fault, said", [("key", "API キーを断られました (401)"), ("network", "つながりませんでした"),
                                         ("model", "JUDGE_MODEL のモデル (other-model) がありません (404)")])
def test_a_failing_judge_is_said_once_in_japanese_and_leaves_the_scores_empty(stub, capsys, fault, said):
    judge = {"key": stub.judge(key="sk-wrong-key-456"), "network": stub.judge(port=free_port()),
             "model": stub.judge(model="other-model")}[fault]
    assert general.scored(judge, rows(3)) == {"before": [None] * 3, "after": [None] * 3}
    printed = capsys.readouterr().out
    assert said in printed and printed.count("採点なしで続けます") == 1
    assert "sk-wrong-key-456" not in printed  # the stub echoes the key it got: it must not reach the output


def test_the_judge_comes_from_the_environment_and_its_key_is_never_shown(stub, adapted, monkeypatch, capsys):
    for name in general.JUDGE:
        monkeypatch.delenv(name, raising=False)
    assert general.judge_from_environment() is None  # none set: no judge, nothing asked
    monkeypatch.setenv("JUDGE_BASE_URL", stub.judge().base_url)
    assert general.judge_from_environment() is None and "JUDGE_MODEL がありません" in capsys.readouterr().out
    monkeypatch.setenv("JUDGE_MODEL", "judge-model")
    monkeypatch.setenv("JUDGE_API_KEY", KEY)
    judge = general.judge_from_environment()
    assert KEY not in repr(judge)
    model, tokenizer = adapted
    table = general.compare(model, tokenizer, 2, judge=judge)
    assert table["judge_before"].tolist() == [4, 4] and table["judge_after"].tolist() == [4, 4]
    assert "採点 (1〜5 の平均、両方採点できた 2 問): 4.00 → 4.00" in general.reading(table)
    assert KEY not in capsys.readouterr().out + table.to_csv() + json.dumps(general.reading(table))


@pytest.mark.unit
@pytest.mark.parametrize("after, said", [(60.0, "下がりました"), (104.0, "ほぼ変わっていません"),
                                         (130.0, "少し上がりました"), (400.0, "大きく上がりました")])
def test_the_reading_says_which_way_the_perplexity_moved(after, said):
    table = pd.DataFrame({"perplexity_before": [100.0, 100.0], "perplexity_after": [after, after],
                          "judge_before": [None, None], "judge_after": [None, None]})
    assert said in general.reading(table) and "採点" not in general.reading(table)
