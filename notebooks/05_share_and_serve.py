# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05. 学習したモデルを保存・共有して、使う
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-finetune-ja/llm-finetune-ja/blob/main/notebooks/05_share_and_serve.ipynb)
#
# **このノートブックでやること**
# 1. アダプター (小さい) と、必要なら元のモデルに LoRA を合体させた **マージ済みモデル** (大きい) を保存し、大きさを比べる
# 2. **モデルカード** (モデルの説明書: 元のモデル、データ、設定、学習前後の採点、ライセンス) を作る
# 3. Hugging Face Hub にアップロードする (GitHub は 100 MB を超えるファイルを置けないため)。既定では非公開
# 4. Hub (またはフォルダ) から、選んだ **revision** (版) のアダプターを読み込み直す
# 5. 会話の履歴つきでチャットする (答えは 1 文字ずつ表示されます)
# 6. ほかのプログラムから呼べる小さな HTTP API (OpenAI 形式) を立てて、呼んでみる
#
# **かかる時間**: 5 分ほど (アップロードとマージをする場合はモデルの大きさ次第)。
#
# 先に **03** (と、採点をモデルカードに載せるなら **04**) を実行しておいてください。

# %%
# @title 0. セットアップ(最初に 1 回だけ実行)
# @markdown Colab では、このリポジトリ (helpers と datasets) を取得し、Colab に入っていないライブラリ (bitsandbytes) だけを入れます。Colab にすでにあるライブラリ (PyTorch や transformers) は入れ替えないので、再起動は要りません。ローカルの Jupyter では何もしません。
# @markdown **Google Drive** は、ノートブックの間で結果を渡す場所です。Colab ではノートブックごとに別の実行環境 (ランタイム) になるので、02 のデータや 03 のアダプターは Drive を通って次のノートブックに届きます。接続が切れても、学習の途中経過が Drive に残ります。
USE_GOOGLE_DRIVE = True  # @param {type:"boolean"}
import os, subprocess, sys

REPO_URL = "https://github.com/llm-finetune-ja/llm-finetune-ja"
if "google.colab" in sys.modules:
    REPO_DIR = "/content/" + REPO_URL.rstrip("/").rsplit("/", 1)[-1]
    if not os.path.isdir(REPO_DIR):
        clone = subprocess.run(["git", "clone", "-q", "--depth", "1", REPO_URL, REPO_DIR], capture_output=True, text=True)
        if clone.returncode:
            raise SystemExit(f"リポジトリ {REPO_URL} を取得できませんでした。このセルの REPO_URL が公開リポジトリの URL か確かめてください"
                             f" (フォークしたなら自分のユーザー名に書き換えます)。\ngit の出力: {clone.stderr.strip()}")
    sys.path.insert(0, REPO_DIR)
    from helpers import colab
    colab.setup(REPO_DIR, USE_GOOGLE_DRIVE)
import helpers

# %% [markdown]
# ## 1. 設定
# - `SAVE_MERGED`: マージ済みモデルも保存する (1.8B のモデルなら fp16 で約 3.7 GB。アダプターだけなら数十 MB)
# - `PUSH_TO_HUB`: Hub にアップロードする (既定はオフ)。トークンは Colab のシークレット `HF_TOKEN` か、ログインで渡します。画面にもファイルにも書きません
# - `REPO_ID`: アップロード先 (`ユーザー名/リポジトリ名`)。`PRIVATE` がオンなら非公開
# - `LOAD_FROM` / `REVISION`: 読み込み直すアダプター (空なら出力フォルダのもの) と、その版 (ブランチ名やコミットの ID)

# %%
# @title 保存と共有の設定
SAVE_MERGED = False  # @param {type:"boolean"}
PUSH_TO_HUB = False  # @param {type:"boolean"}
REPO_ID = "your-name/llm-jp-lora-tutorial"  # @param {type:"string"}
PRIVATE = True  # @param {type:"boolean"}
LOAD_FROM = ""  # @param {type:"string"}
REVISION = "main"  # @param {type:"string"}

import pandas as pd

from types import SimpleNamespace

from helpers import artefacts, env, settings, share

cfg = settings.collect(SAVE_MERGED=SAVE_MERGED, PUSH_TO_HUB=PUSH_TO_HUB, REPO_ID=REPO_ID, PRIVATE=PRIVATE,
                       LOAD_FROM=LOAD_FROM, REVISION=REVISION)
out = env.output_dir()
env.require(out / artefacts.ADAPTER, "03_lora_finetune.ipynb")
adapter_dir, run = artefacts.evaluated_run(out)  # 04 が採点したアダプター (04 を実行していなければ 03 のもの)
trained = SimpleNamespace(**run["settings"])  # 03 のフォームの値
precision = env.choose_precision(trained.MODEL)
print(f"モデル: {trained.MODEL} / 学習: {run['run']} / アダプター: {adapter_dir} ({artefacts.size_mb(adapter_dir):,.1f} MB)")

# %% [markdown]
# ## 2. 必要なら、元のモデルとアダプターをマージして保存
# `merge_and_unload` は LoRA の行列を元の重みに足し込み、普通のモデルにします。PEFT がなくても読み込めて、少し速く動きますが、ファイルは大きくなります。

# %%
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from helpers import models
from helpers.errors import japanese_errors

with japanese_errors(trained.MODEL):
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
if cfg.SAVE_MERGED:  # 元のモデルを読み込むのは、マージするときだけ
    with japanese_errors(trained.MODEL):
        base = AutoModelForCausalLM.from_pretrained(models.resolve(trained.MODEL), dtype=precision.dtype,
                                                    device_map=precision.device)
    # 1.8B なら約 3.7 GB: ディスクの空きが要ります。書き終わってから merged/ と入れ替えます
    with japanese_errors("マージ済みモデルの保存"), artefacts.writing(out / artefacts.MERGED) as merged_dir:
        share.merge(PeftModel.from_pretrained(base, adapter_dir), merged_dir, torch.float16)
        tokenizer.save_pretrained(merged_dir)
        artefacts.stamp(merged_dir, run["run"], checkpoint=run.get("checkpoint", "adapter"))
    merged_dir = out / artefacts.MERGED
    print(f"マージ済みモデル: {merged_dir} ({artefacts.size_mb(merged_dir):,.0f} MB) / アダプター: {artefacts.size_mb(adapter_dir):,.1f} MB")
    del base  # 5 で読み込み直すので、メモリを空けておく
else:
    print("SAVE_MERGED がオフなので、マージはしません (元のモデルも、ここでは読み込みません)。")

# %% [markdown]
# ## 3. モデルカードを作る
# 04 の採点があれば載せます (04 が採点したアダプターと一緒に保存した、そのアダプター自身の採点です)。元のモデルのライセンスは、そのモデルカードから読みます (読めなければ「不明」と書くので、自分で確かめてください)。

# %%
card = share.model_card(base_model=trained.MODEL, license=share.base_license(models.resolve(trained.MODEL)),
                        settings=vars(trained), dataset="02 で用意したデータ (prepared/)",
                        summary=pd.DataFrame(run["summary"]).set_index("split") if "summary" in run else None)
artefacts.save(adapter_dir / "README.md", card)
print(card)

# %% [markdown]
# ## 4. Hugging Face Hub にアップロードする (`PUSH_TO_HUB` がオンのときだけ)
# 準備: Hugging Face でアカウントを作り、書き込み (write) 権限のトークンを作って、Colab の左の鍵アイコン (シークレット) に `HF_TOKEN` という名前で登録します。
# トークンはノートブックに直接書かないでください (共有したときに漏れます)。

# %%
if cfg.PUSH_TO_HUB:
    with japanese_errors(cfg.REPO_ID):
        print("アップロードしました:", share.push(adapter_dir, cfg.REPO_ID, card, private=cfg.PRIVATE))
else:
    print("PUSH_TO_HUB がオフなので、アップロードはしません。")

# %% [markdown]
# ## 5. 読み込み直す (Hub の版を選べます)
# `PeftModel.from_pretrained(元のモデル, アダプター, revision=...)` で、元のモデルにアダプターを重ねます。
# Hub のアダプターは、過学習する前のチェックポイントをブランチやコミットとして残しておけば、`REVISION` でその版を選べます。

# %%
source = cfg.LOAD_FROM or adapter_dir
with japanese_errors(str(source)):
    base = AutoModelForCausalLM.from_pretrained(models.resolve(trained.MODEL), dtype=precision.dtype,
                                                device_map=precision.device)
    reloaded = PeftModel.from_pretrained(base, source, revision=cfg.REVISION if cfg.LOAD_FROM else None)
print(f"{source} を読み込みました。メモリ: {reloaded.get_memory_footprint() / 2**20:,.0f} MiB (元のモデル + アダプター)")

# %% [markdown]
# ## 6. チャット (会話の履歴つき、1 文字ずつ表示)
# `history` に会話をためていき、毎回チャットテンプレートで全体をモデルに渡します。`TextStreamer` で、生成されたそばから表示します。
# `MESSAGE` を書き換えてこのセルを何度も実行すると、会話が続きます。`RESET` をオンにすると最初からです。

# %%
# @title チャット
MESSAGE = "日本の首都はどこですか？"  # @param {type:"string"}
RESET = False  # @param {type:"boolean"}
from transformers import TextStreamer

from helpers import generation

chat_cfg = settings.collect(MESSAGE=MESSAGE, RESET=RESET)
if chat_cfg.RESET or "history" not in globals():
    history = []
history.append({"role": "user", "content": chat_cfg.MESSAGE})
print("あなた:", chat_cfg.MESSAGE)
print("モデル: ", end="")
text, *_ = generation.reply(reloaded, tokenizer, history, streamer=TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True))
history.append({"role": "assistant", "content": text})

# %% [markdown]
# ## 7. HTTP API を立てて、呼んでみる
# `python -m helpers.serve` は、OpenAI の API と同じ形 (`/v1/chat/completions`) で答える小さなサーバーです。
# ターミナルなら `python -m helpers.serve --model 元のモデル --adapter アダプターのフォルダ --port 8000`。
# 既定では 127.0.0.1 (このマシンの中) からだけ呼べます。ここではサーバーを別のプロセスで起動して、`urllib` で呼び、止めます。

# %%
import json
import socket
import subprocess
import sys
import time
import urllib.request

with socket.socket() as probe:  # 空いているポートを選ぶ
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
server = subprocess.Popen([sys.executable, "-m", "helpers.serve", "--model", trained.MODEL,
                           "--adapter", str(adapter_dir), "--port", str(port)], cwd=str(env.REPO_ROOT))
try:
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"messages": [{"role": "user", "content": "日本の首都はどこですか？"}], "max_tokens": 32}).encode())
    with urllib.request.urlopen(request, timeout=120) as response:
        answer = json.loads(response.read())
    print(json.dumps(answer, ensure_ascii=False, indent=2))
finally:
    server.terminate()
    server.wait()

# %% [markdown]
# ## まとめと次のステップ
# - アダプターとモデルカードを保存し、(オンにしたときは) マージ済みモデルの保存と Hub へのアップロードをしました。
# - アダプターを読み込み直してチャットし、HTTP API から呼び出しました。OpenAI のライブラリからも `base_url="http://127.0.0.1:8000/v1"` で呼べます。
#
# 次の一歩: 自分のデータで 02〜04 をやり直し、いちばん良かったアダプターを Hub に非公開で置いておきましょう。
