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
# 2. 自分の PC の **llama.cpp / Ollama / LM Studio** で使えるように、**GGUF** ファイルと Ollama の `Modelfile` を書き出す (GGUF にできるモデルだけ。3 を見てください)
# 3. **モデルカード** (モデルの説明書: 元のモデル、データ、設定、学習前後の採点、ライセンス) を作る
# 4. Hugging Face Hub にアップロードする (GitHub は 100 MB を超えるファイルを置けないため)。既定では非公開
# 5. Hub (またはフォルダ) から、選んだ **revision** (版) のアダプターを読み込み直す
# 6. 会話の履歴つきでチャットする (答えは 1 文字ずつ表示されます)
# 7. OpenAI 形式の API サーバーを立てて、openai ライブラリから呼ぶ (stream=True も)。Colab では、サーバーはこのランタイムの中だけで動きます
#
# **かかる時間**: 5 分ほど (アップロードとマージをする場合はモデルの大きさ次第)。
#
# 先に **03** (と、採点をモデルカードに載せるなら **04**) を実行しておいてください。
#
# **最短コース**: 既定のまま上から実行すると、アダプターの保存、モデルカード、チャット、API サーバーまで進みます (マージ、GGUF、アップロードは既定でオフ)。
# 説明は読まなくても、セルは上から順にすべて実行してください。オフになっている機能の節のセルも、実行すれば何もせずに次へ進みます。
#
# 作ったものは出力フォルダ (Colab では Google Drive の `マイドライブ/llm-finetune-ja/`) に保存されます。このノートブックのあとで学習したモデルを使う方法は、最後の「まとめと次のステップ」にあります。

# %%
# @title 0. セットアップ(最初に 1 回だけ実行)
# @markdown Colab では、このリポジトリ (helpers と datasets) を取得し、Colab に入っていないライブラリ (bitsandbytes と、グラフの日本語フォント matplotlib-fontja) だけを入れます。Colab にすでにあるライブラリ (PyTorch や transformers) は入れ替えないので、再起動は要りません。ローカルの Jupyter では何もしません。
# @markdown **USE_GOOGLE_DRIVE**: Google Drive は、ノートブックの間で結果を渡す場所です。Colab ではノートブックごとに別の実行環境 (ランタイム) になるので、02 のデータや 03 の学習結果は Drive を通って次のノートブックに届きます。接続が切れても、学習の途中経過が Drive に残ります。最初に「Google ドライブに接続」の画面が出たら、自分のアカウントを選び、権限の項目はすべてチェックを入れたまま「続行」を押します (外すと英語のエラー credential propagation was unsuccessful で止まります。そのときはこのセルをもう一度実行します)。結果は マイドライブ/llm-finetune-ja/ に保存されます。開いたときの「このノートブックは Google が作成したものではありません」という警告は、GitHub のノートブックではいつも出ます。「このまま実行」を押します。
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
# - `EXPORT_GGUF` / `GGUF_TYPE`: GGUF に書き出す (マージもします)。`q8_0` は 8 ビット (f16 の約半分の大きさ)、`f16` は 16 ビットのまま
# - `PUSH_TO_HUB`: Hub にアップロードする (既定はオフ)。トークンは Colab のシークレット `HF_TOKEN` か、ログインで渡します。画面にもファイルにも書きません
# - `REPO_ID`: アップロード先 (`ユーザー名/リポジトリ名`)。`PRIVATE` がオンなら非公開
# - `LOAD_FROM` / `REVISION`: 読み込み直すアダプター (空なら出力フォルダのもの) と、その版 (ブランチ名やコミットの ID)

# %%
# @title 保存と共有の設定
# @markdown **SAVE_MERGED**: オンなら、アダプターを元のモデルに足し込んだマージ済みモデルも保存します (1.8B なら約 3.7 GB)。
SAVE_MERGED = False  # @param {type:"boolean"}
# @markdown **EXPORT_GGUF**: オンなら、llama.cpp・Ollama・LM Studio 用の GGUF にも書き出します (マージもします。書き出せるモデルは 3 の一覧)。
EXPORT_GGUF = False  # @param {type:"boolean"}
# @markdown **GGUF_TYPE**: GGUF の数の形式。q8_0 は 8 ビット (f16 の約半分の大きさ)、f16 は 16 ビットのまま。
GGUF_TYPE = "q8_0"  # @param ["q8_0", "f16"]
# @markdown **PUSH_TO_HUB**: オンなら Hugging Face Hub にアップロードします (トークンが要ります。既定はオフ)。
PUSH_TO_HUB = False  # @param {type:"boolean"}
# @markdown **REPO_ID**: アップロード先 (ユーザー名/リポジトリ名)。
REPO_ID = "your-name/llm-jp-lora-tutorial"  # @param {type:"string"}
# @markdown **PRIVATE**: オン (既定) なら、アップロードしたリポジトリを非公開にします。
PRIVATE = True  # @param {type:"boolean"}
# @markdown **LOAD_FROM**: 読み込み直すアダプター (Hub の ID かフォルダ)。空なら出力フォルダのもの。
LOAD_FROM = ""  # @param {type:"string"}
# @markdown **REVISION**: LOAD_FROM の版 (ブランチ名やコミットの ID)。ふつうは main。
REVISION = "main"  # @param {type:"string"}

import pandas as pd

from types import SimpleNamespace

from helpers import artefacts, env, settings, share

cfg = settings.collect(SAVE_MERGED=SAVE_MERGED, EXPORT_GGUF=EXPORT_GGUF, GGUF_TYPE=GGUF_TYPE, PUSH_TO_HUB=PUSH_TO_HUB, REPO_ID=REPO_ID, PRIVATE=PRIVATE,
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
# GGUF に書き出すとき (`EXPORT_GGUF`) も、このマージ済みモデルを変換します。その前に、変換ツールがこのモデルのトークナイザーを読めるかを数秒で確かめ (語彙だけを変換してみます)、読めなければ理由を表示して、GGUF のためのマージ (1.8B なら約 3.7 GB の書き込み) はしません。

# %%
import torch
from transformers import AutoTokenizer

from helpers import gguf_export, models
from helpers.errors import TutorialError, japanese_errors

with japanese_errors(trained.MODEL):
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
export_gguf = cfg.EXPORT_GGUF
if export_gguf:  # 大きなマージの前に: llama.cpp の変換ツールは、このトークナイザーを読めるか
    try:
        with japanese_errors(trained.MODEL):
            gguf_export.check(tokenizer, models.resolve(trained.MODEL))
        print("GGUF: 変換ツールはこのモデルのトークナイザーを読めます。")
    except TutorialError as exc:  # 読めない: 理由を表示して、GGUF は書き出さない (マージは SAVE_MERGED がオンのときだけ)
        print(exc)
        export_gguf = False
if cfg.SAVE_MERGED or export_gguf:  # 元のモデルを読み込むのは、マージするときだけ
    with japanese_errors(trained.MODEL):  # 4 ビットで学習したときも、マージは元の精度の重みに (4 ビットに足すと丸めの誤差が出る)
        tuned = models.load(trained.MODEL, precision, adapter=adapter_dir)
    # 1.8B なら約 3.7 GB: ディスクの空きが要ります。書き終わってから merged/ と入れ替えます
    with japanese_errors("マージ済みモデルの保存"), artefacts.writing(out / artefacts.MERGED) as merged_dir:
        share.merge(tuned, merged_dir, torch.float16)
        tokenizer.save_pretrained(merged_dir)
        artefacts.stamp(merged_dir, run["run"], checkpoint=run.get("checkpoint", "adapter"))
    merged_dir = out / artefacts.MERGED
    print(f"マージ済みモデル: {merged_dir} ({artefacts.size_mb(merged_dir):,.0f} MB) / アダプター: {artefacts.size_mb(adapter_dir):,.1f} MB")
    del tuned  # 6 で読み込み直すので、メモリを空けておく
else:
    print("マージはしません (SAVE_MERGED がオフで、GGUF にも書き出さないので。元のモデルも、ここでは読み込みません)。")

# %% [markdown]
# ## 3. GGUF に書き出して、自分の PC で使う (`EXPORT_GGUF` がオンのときだけ)
# **GGUF** は [llama.cpp](https://github.com/ggml-org/llama.cpp) (CPU でも速く動く推論エンジン) のファイル形式です。
# [Ollama](https://ollama.com/) と [LM Studio](https://lmstudio.ai/) も、中で llama.cpp を使っていて GGUF を読みます。
# - 変換には llama.cpp 自身のスクリプト `convert_hf_to_gguf.py` を使います。PyPI にある llama-cpp-python のソース (版を固定) に入っているものを、初回だけ取得します (約 76 MB。コンパイルは要りません)。実行したコマンドを `$` の行に表示します。
# - `model-q8_0.gguf` (または `model-f16.gguf`): マージ済みモデル 1 つで完結するファイル。**量子化** (重みを少ないビット数で表すこと) した `q8_0` は f16 の約半分の大きさで、答えはほとんど変わりません。
# - `adapter-lora-f16.gguf`: アダプターだけの GGUF。元のモデルの GGUF (同じ版) と組み合わせて使います (llama.cpp の `--lora`、Ollama の `ADAPTER`)。
# - `Modelfile`: Ollama 用の設定。03 の学習と同じチャットテンプレートと、答えを止めるトークン (学習と同じもの) を書きます。
# - 既定の llm-jp-3 のトークナイザーは `tokenizer.json` だけの Unigram 型で、変換ツールはそのままでは読めません。そこで、llm-jp が [GitHub](https://github.com/llm-jp/llm-jp-tokenizer) で公開している同じ語彙の SentencePiece モデル (`tokenizer.model`、Apache-2.0) を初回だけ取得し (版と sha256 を固定し、語彙が 1 つずつ同じことも確かめます)、llama.cpp の Unigram 型トークナイザーとして書き出します。文章の分け方は学習のときと同じです。ただし語彙にない文字 (まれな漢字など) は、llama.cpp では不明なトークン `<unk>` になります。
# - **GGUF にできるモデル** (このリポジトリで確かめた範囲):
#   - ◯ **既定の llm-jp-3 系、Qwen2.5 系、練習用の tiny**。同じトークナイザーを持つ小さなモデルで、llama.cpp が学習のときと同じようにトークンに分け、同じ答えを出すことを確かめています。本物の大きさ (1.8B など) の重みの GGUF は、まだ動かしていません。
#   - × **Gemma 3 270M**: 変換ツールが受け付けません (トークナイザーの画像用のトークンの ID が、モデルの語彙の大きさを超えるため)。
#   - 未確認: sarashina2.2 と、そのほかのモデル。
# - 変換ツールが読めないトークナイザーのモデルでは、2 で理由を表示して、ここは何もしません (セルは実行してかまいません)。アダプターのまま、6〜8 のように使います。

# %%
if export_gguf:
    try:
        with artefacts.writing(out / artefacts.GGUF) as gguf_dir:
            gguf_dir.mkdir()
            model_file = gguf_export.model_to_gguf(merged_dir, gguf_dir / f"model-{cfg.GGUF_TYPE}.gguf", cfg.GGUF_TYPE)
            gguf_export.adapter_to_gguf(adapter_dir, models.resolve(trained.MODEL), gguf_dir / "adapter-lora-f16.gguf")
            (gguf_dir / gguf_export.MODELFILE).write_text(gguf_export.modelfile(tokenizer, model_file.name), encoding="utf-8")
        gguf_dir = out / artefacts.GGUF
        sizes = {f.name: artefacts.size_mb(f) for f in sorted(gguf_dir.iterdir())} | {
            "(参考) マージ済みモデル merged/": artefacts.size_mb(merged_dir), "(参考) アダプター": artefacts.size_mb(adapter_dir)}
        display(pd.DataFrame({"大きさ (MB)": sizes}).round(1))
        print(f"{gguf_dir / gguf_export.MODELFILE}:\n{(gguf_dir / gguf_export.MODELFILE).read_text(encoding='utf-8')}")
    except TutorialError as exc:  # 変換の途中で失敗したとき: 理由を表示して先へ進む
        print(exc)
elif cfg.EXPORT_GGUF:
    print("GGUF には書き出しません (理由は 2 に表示しました)。")
else:
    print("EXPORT_GGUF がオフなので、GGUF には書き出しません。")

# %% [markdown]
# **書き出した GGUF を自分の PC で使う**: Colab なら、drive.google.com で `マイドライブ/llm-finetune-ja/gguf/` を自分の PC にダウンロードしてから、次のどれかで開きます。
# - **Ollama**: `gguf/` フォルダで `ollama create my-tuned -f Modelfile` を実行し、`ollama run my-tuned` で話しかけます。
#   アダプターの GGUF を使うときは、`Modelfile` の `FROM` を元のモデルの GGUF にして、`ADAPTER ./adapter-lora-f16.gguf` の行を足します。
# - **LM Studio**: `lms import gguf/model-q8_0.gguf` (またはアプリの「My Models」フォルダに置く) で読み込みます。チャットテンプレートは GGUF の中に入っているので、そのまま学習と同じ形で会話できます。
# - **llama.cpp**: `llama-cli -m model-q8_0.gguf -cnv` で会話、`llama-server -m model-q8_0.gguf --port 8000` で、8 と同じ OpenAI 形式の API サーバーになります。
#
# Ollama と LM Studio そのものは、このリポジトリのテストでは動かしていません (llama.cpp では、書き出した GGUF が学習と同じ答えを出すことを確かめています)。

# %% [markdown]
# ## 4. モデルカードを作る
# 04 の採点があれば載せます (04 が採点したアダプターと一緒に保存した、そのアダプター自身の採点です)。元のモデルのライセンスは、そのモデルカードから読みます (読めなければ「不明」と書くので、自分で確かめてください)。

# %%
card = share.model_card(base_model=trained.MODEL, license=share.base_license(models.resolve(trained.MODEL)),
                        settings=vars(trained), dataset="02 で用意したデータ (prepared/)",
                        summary=pd.DataFrame(run["summary"]).set_index("split") if "summary" in run else None)
artefacts.save(adapter_dir / "README.md", card)
print(card)

# %% [markdown]
# ## 5. Hugging Face Hub にアップロードする (`PUSH_TO_HUB` がオンのときだけ)
# 準備: Hugging Face でアカウントを作り、書き込み (write) 権限のトークンを作って、Colab の左の鍵アイコン (シークレット) に `HF_TOKEN` という名前で登録します。
# トークンはノートブックに直接書かないでください (共有したときに漏れます)。

# %%
if cfg.PUSH_TO_HUB:
    print("アップロードしました:", share.push(adapter_dir, cfg.REPO_ID, card, private=cfg.PRIVATE))
else:
    print("PUSH_TO_HUB がオフなので、アップロードはしません。")

# %% [markdown]
# ## 6. 読み込み直す (Hub の版を選べます)
# `models.load` は 03 と同じ精度と注意機構 (SDPA) で元のモデルを読み (4 ビットにはしません)、`PeftModel.from_pretrained(元のモデル, アダプター, revision=...)` でアダプターを重ねます。
# Hub のアダプターは、過学習する前のチェックポイントをブランチやコミットとして残しておけば、`REVISION` でその版を選べます。

# %%
source = cfg.LOAD_FROM or adapter_dir
with japanese_errors(str(source)):
    reloaded = models.load(trained.MODEL, precision, adapter=source, revision=cfg.REVISION if cfg.LOAD_FROM else None)
print(f"{source} を読み込みました。メモリ: {reloaded.get_memory_footprint() / 2**20:,.0f} MiB (元のモデル + アダプター)")

# %% [markdown]
# ## 7. チャット (会話の履歴つき、1 文字ずつ表示)
# `history` に会話をためていき、毎回チャットテンプレートで全体をモデルに渡します。`TextStreamer` で、生成されたそばから表示します。
# `MESSAGE` を書き換えてこのセルを何度も実行すると、会話が続きます。`RESET` をオンにすると最初からです。

# %%
# @title チャット
# @markdown **MESSAGE**: モデルに送る発言。書き換えてこのセルを実行するたびに、会話が続きます。
MESSAGE = "日本の首都はどこですか？"  # @param {type:"string"}
# @markdown **RESET**: オンにして実行すると、会話の履歴を消して最初から始めます。
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
# ## 8. OpenAI 形式の API サーバーを立てて、openai ライブラリから呼ぶ
# `python -m helpers.serve` は、OpenAI の API と同じ形 (`/v1/chat/completions` と `/v1/models`) で答えるサーバーです (FastAPI と uvicorn で動きます)。
# OpenAI のライブラリ `openai` や、それを使う道具 (LangChain など) から、`base_url` をこのサーバーにするだけで呼べます。
# 答えを少しずつ受け取る `stream=True` (チャット画面でおなじみの、文字が順に出てくる表示) にも対応しています。
# - **Colab では、サーバーはこのランタイムの中だけで動きます。** サーバーが待つ `127.0.0.1` は「このランタイムの中」のことです。このセルは、同じランタイムの中から openai ライブラリでサーバーを呼びます。
#   自分の PC のプログラムからは呼べません。ランタイムを閉じると、サーバーも消えます。このランタイムが動いている間だけ続けて使う方法は、セルの最後に表示します。
# - 自分の PC の Jupyter では、ターミナルでサーバーを起動したままにすれば、このノートブックのあとも使えます (コマンドはセルの最後に表示します)。
#   ほかのマシンから呼ぶときは `--host 0.0.0.0` に、合言葉 `--api-key` を付けます (付けないと警告が出ます)。
# - 答えの長さ (`max_tokens`) と質問の長さの合計がモデルの上限を超えると、生成を始めずに `context_length_exceeded` のエラーを返します。
# - ここではサーバーを別のプロセスで起動し (`serve.launch`。出力は出力フォルダの `server.log` へ)、呼んで、最後に止めます。サーバーが起動の途中で止まったら、待たずにログの最後を表示します。このノートブックのあとも使うときのコマンドは、セルの最後に表示します。

# %%
import secrets
import shlex
import socket
import sys

from openai import OpenAI

from helpers import serve

with socket.socket() as probe:  # 空いているポートを選ぶ
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
api_key = secrets.token_urlsafe(16)  # この実行だけの合言葉
# モデルを読み込み終わるまで待つ。サーバーが途中で止まったら、待たずにログの最後を表示して止まる
server = serve.launch(port, "--model", trained.MODEL, "--adapter", str(adapter_dir), f"--api-key={api_key}",  # = : 合言葉が - で始まっても
                      log=out / "server.log")
try:
    client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=api_key)
    served = client.models.list().data[0].id  # サーバーが名乗るモデルの名前
    question = [{"role": "user", "content": "日本の首都はどこですか？"}]
    reply = client.chat.completions.create(model=served, messages=question, max_tokens=32)
    print(f"モデル {served} の答え: {reply.choices[0].message.content} (終わり方: {reply.choices[0].finish_reason}, "
          f"トークン数: 質問 {reply.usage.prompt_tokens} + 答え {reply.usage.completion_tokens})")
    print("stream=True で少しずつ: ", end="")
    for chunk in client.chat.completions.create(model=served, messages=question, max_tokens=32, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
    print()
finally:
    server.terminate()  # このセルで立てたサーバーは、ここで止める
    server.wait()
options = ["--model", trained.MODEL, "--adapter", str(adapter_dir)]
if env.in_colab():  # Colab のランタイムには、外 (自分の PC) から直接はつながらない
    print(f"""
このノートブックのあとも Colab で使うとき (このランタイムが動いている間だけ): 新しいセルで、サーバーを裏で起動したままにします
(アダプターは Drive から読むので、Drive を切り離す最後の「おわり」のセルより前に実行します。実行したあとなら、セットアップのセルから実行し直します)
  from helpers import serve
  server = serve.launch(8000, {", ".join(map(repr, options))}, log="/content/server.log")
同じランタイムのほかのセルからは、下の「呼ぶ側」のように http://127.0.0.1:8000/v1 で呼べます。
このブラウザーで開くには、Colab のポートの中継を使います (Colab にログインしているこのブラウザー向けの URL で、ほかの PC やプログラムからは呼べないことがあります):
  from google.colab.output import eval_js
  print(eval_js("google.colab.kernel.proxyPort(8000)"))  # 表示された URL の後ろに health を付けて開くと、サーバーの状態が出ます
  (または google.colab.output.serve_kernel_port_as_window(8000) で、新しいタブに開きます)
自分の PC のプログラムから呼ぶなら: 3 の GGUF を自分の PC の llama.cpp (llama-server) / Ollama / LM Studio で動かすか、
Drive の出力フォルダのアダプターを自分の PC に置き、このリポジトリの python -m helpers.serve で起動します。""")
else:
    print(f"""
このノートブックのあとも使うときは、ターミナルでサーバーを起動したままにします:
  cd {shlex.quote(str(env.REPO_ROOT))} && {shlex.join([sys.executable, "-m", "helpers.serve", *options, "--port", "8000"])}""")
print(f"""呼ぶ側 (Python):
  from openai import OpenAI
  client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="なんでも (--api-key を付けたならその値)")
  client.chat.completions.create(model="{served}", messages=[{{"role": "user", "content": "こんにちは"}}], stream=True)""")

# %% [markdown]
# **同時にたくさんの人から呼ばれるとき** (読み飛ばして OK。実行するセルはありません): このサーバーは 1 度に 1 つずつ、来た順に答えます (練習や少人数向け)。
# 多くの呼び出しを同時にさばくなら、LoRA アダプターをそのまま読める推論サーバー [vLLM](https://docs.vllm.ai/) が使えます (GPU が必要です。このリポジトリでは試していません):
# ```bash
# vllm serve llm-jp/llm-jp-3.1-1.8b-instruct4 --enable-lora --lora-modules tuned=出力フォルダ/evaluated_adapter --max-lora-rank 16 --port 8000
# ```
# 呼ぶときは `model="tuned"` にします (`--max-lora-rank` は 03 の LORA_R 以上にします)。

# %% [markdown]
# ## まとめと次のステップ
# - アダプターとモデルカードを保存し、(オンにしたときは) マージ済みモデルの保存、GGUF と Modelfile の書き出し、Hub へのアップロードをしました。
# - アダプターを読み込み直してチャットし、OpenAI 形式の API サーバーをこのランタイムの中に立てて、openai ライブラリから (stream=True でも) 呼び出しました。サーバーは 8 のセルの最後で止めました。
#
# **このノートブックのあとで、学習したモデルを使う**: Colab では、作ったものは Drive の `マイドライブ/llm-finetune-ja/` に残ります (ランタイムの中のものは、閉じると消えます)。
# - **自分の PC で**: `EXPORT_GGUF` をオンにして書き出した `gguf/` をダウンロードし、llama.cpp・Ollama・LM Studio で開きます (3 のあとの説明)。GGUF にできないモデルなら、下の 2 つの方法で使います。
# - **あとで Colab で**: 新しいランタイムでこのノートブックを開き、上から実行します。6〜8 が Drive のアダプターを読み込み直して、チャットと API サーバーで使えます。
# - **Hugging Face Hub で**: `PUSH_TO_HUB` をオンにしてアップロードすると (既定は非公開)、ほかの Colab や PC からも読み込めます (6 の `LOAD_FROM` と `REVISION`、または `PeftModel.from_pretrained`)。
#
# **ランタイムを閉じる**: 下の「おわり」のセルを実行すると、Drive への書き込みを終えて Drive を切り離し、閉じ方 (メニューの「ランタイム」→「ランタイムを接続解除して削除」) を表示します。
# 閉じれば、無料の GPU の時間を使わずに済みます。
#
# **次の一歩**: 自分のデータで、02 からやり直します (02 → 03 → 04 → 05)。04 で選んだアダプターは、Hub に非公開で置いておきましょう。
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-finetune-ja/llm-finetune-ja/blob/main/notebooks/02_build_dataset.ipynb) 02: 自分のデータを用意する

# %%
# @title おわり: 結果を Drive に書き終える
# @markdown Colab では、まだ Drive に届いていない書き込みを済ませて Drive を切り離し、このランタイムを閉じてよいことを表示します。ローカルの Jupyter では何もしません。
from helpers import colab

colab.finish()
