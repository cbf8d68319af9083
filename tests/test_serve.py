"""The HTTP API, started as `python -m helpers.serve` on 127.0.0.1 and called over real HTTP."""
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers.env import REPO_ROOT


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "helpers.serve", "--model", "tiny", "--port", str(port),
                                "--max-tokens", "64"], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            break
        except OSError:
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=10)


def call(url, path="/v1/chat/completions", body=None, raw=None, method="POST"):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def ask(url, question, **extra):
    return call(url, body={"messages": [{"role": "user", "content": question}], **extra})


def test_health(server):
    assert call(server, "/health", method="GET") == (200, {"status": "ok", "model": "tiny"})


def test_chat_completion_answers_openai_style(server):
    status, reply = ask(server, "日本の首都はどこですか？", max_tokens=16)
    assert status == 200 and reply["object"] == "chat.completion"
    choice = reply["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "東京です。"} and choice["finish_reason"] == "stop"
    assert reply["usage"]["total_tokens"] == reply["usage"]["prompt_tokens"] + reply["usage"]["completion_tokens"]


def test_history_is_used(server):
    messages = [{"role": "user", "content": "こんにちは"}, {"role": "assistant", "content": "こんにちは。ご用件をどうぞ。"},
                {"role": "user", "content": "フランスの首都はどこですか？"}]
    status, reply = call(server, body={"messages": messages, "max_tokens": 16})
    assert status == 200 and reply["choices"][0]["message"]["content"] == "パリです。"


@pytest.mark.parametrize("body, raw, status, words", [
    (None, b"{not json", 400, "valid JSON"),
    ({"messages": []}, None, 400, "messages"),
    ({"messages": [{"role": "robot", "content": "x"}]}, None, 400, "role"),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 100000}, None, 400, "max_tokens"),
    ({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, None, 400, "temperature"),
    ({"messages": [{"role": "user", "content": "x"}], "stream": True}, None, 400, "stream"),
    (None, b"x" * (65 * 1024), 413, "bytes"),
])
def test_bad_requests_get_json_errors(server, body, raw, status, words):
    code, reply = call(server, body=body, raw=raw)
    assert code == status and words in reply["error"]["message"]


def test_unknown_route_and_wrong_method(server):
    assert call(server, "/v2/nothing", body={})[0] == 404
    assert call(server, "/v1/chat/completions", method="GET")[0] == 405


def test_concurrent_requests_all_answered(server):
    questions = ["日本の首都はどこですか？", "フランスの首都はどこですか？", "空は何色ですか？", "一週間は何日ですか？"] * 2
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda q: ask(server, q, max_tokens=16), questions))
    answers = [r[1]["choices"][0]["message"]["content"] for r in replies]
    assert all(r[0] == 200 for r in replies)
    assert answers == ["東京です。", "パリです。", "青色です。", "七日です。"] * 2
