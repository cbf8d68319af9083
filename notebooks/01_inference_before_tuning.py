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
# # 01. ファインチューニングの前に、モデルを動かしてみる
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-finetune-ja/llm-finetune-ja/blob/main/notebooks/01_inference_before_tuning.ipynb)
#
# **このノートブックでやること**
# 1. 実行環境 (Colab かローカルか、GPU) を確かめる
# 2. 文章が **トークン** (モデルが扱う言葉の小さな単位) と **ID** (トークンの番号) になる様子を見る
# 3. モデルを読み込み、決まった日本語の質問に答えさせる
# 4. その答えを「チューニング前の答え (ベースライン)」として保存する (04 で学習後と比べます)
#
# **かかる時間**: Colab の T4 GPU で約 5 分 (モデルのダウンロードを含む)。小さな練習用モデルなら CPU で数分。
#
# **最短コース**: 既定のまま、上から順にセルを実行するだけで進めます。見出しに「説明は読まなくて OK・セルは実行」とある節は、説明はあとで読めば大丈夫です。ただしセルは飛ばさずに実行してください (あとのセルが、そこで作ったものを使います)。
#
# 学習までの最短で進みたいときは、この 01 を飛ばして 02 から始めても大丈夫です (学習前の答えは 04 も作ります)。
#
# 上から順に「実行」してください。Colab ではバッジから開くと **T4 GPU** のランタイムが選ばれています (GPU がないと表示されたら、メニューの「ランタイム → ランタイムのタイプを変更」で T4 GPU を選びます)。
# Colab では、ノートブックごとに別のランタイムになります。結果は Google Drive を通って次のノートブックに届くので、セットアップの `USE_GOOGLE_DRIVE` はオンのままにしてください。

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
# ## 1. 実行環境のチェック (説明は読まなくて OK・セルは実行)
# GPU の種類と **compute capability** (GPU の世代を表す番号) から、計算に使う精度を決めます。
# T4 (7.5) は bf16 が使えないので fp16、8.0 以上 (A100 など) は bf16、GPU がなければ CPU の fp32 です。

# %%
import pandas as pd

from helpers import env

out = env.output_dir()
pd.Series(env.describe() | {"出力フォルダ": str(out)}, name="値").to_frame()

# %% [markdown]
# ## 2. モデルを選ぶ
# 既定は無料の T4 でも学習できる日本語の **指示応答モデル** (instruction-tuned: 質問に答えるように調整済みのモデル) `llm-jp/llm-jp-3.1-1.8b-instruct4` です。
# 答え方をすでに身につけたモデルから始めるので、数十〜数千行の少ないデータでも、答えの中身や口調を変えられます。
# 一覧にないモデルも、Hugging Face の ID (例: `Qwen/Qwen2.5-0.5B-Instruct`) を入力すれば使えます。
# `tiny` はこのリポジトリの文章だけで作る、ネット不要の小さな練習用モデルです (動作確認用。答えの質は本物のモデルに及びません)。

# %%
# @title モデルの設定
# @markdown **MODEL**: 使うモデル (Hugging Face での名前)。一覧から選ぶか、ほかのモデルの名前を入力します。tiny はネット不要の小さな練習用モデルです。
MODEL = "llm-jp/llm-jp-3.1-1.8b-instruct4"  # @param ["llm-jp/llm-jp-3.1-1.8b-instruct4", "sbintuitions/sarashina2.2-1b-instruct-v0.1", "Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct", "tiny"] {allow-input: true}
# @markdown **MAX_NEW_TOKENS**: 答えの長さの上限 (トークン数)。ふつうは 32〜256。小さいと答えが途中で切れ、大きいと長い答えを待つ時間が増えます。
MAX_NEW_TOKENS = 64  # @param {type:"integer"}
# @markdown **SENTENCE**: 3 でトークンに分けてみる文。好きな文に書き換えてかまいません。
SENTENCE = "富士山は日本でいちばん高い山です。"  # @param {type:"string"}

from helpers import models, settings

cfg = settings.collect(MODEL=MODEL, MAX_NEW_TOKENS=MAX_NEW_TOKENS, SENTENCE=SENTENCE)
model_path = models.resolve(cfg.MODEL)
precision = env.choose_precision(cfg.MODEL)  # Colab で GPU がなければ、ここで止まって T4 の選び方を表示

# %% [markdown]
# ## 3. 文章 → トークン → ID
# **トークナイザー** (tokenizer) は文章をトークンに分け、それぞれを番号 (ID) に変えます。
# モデルが実際に読むのはこの ID の列です。日本語は 1 文字が 1 トークンのことも、数文字で 1 トークンのこともあります。

# %%
from transformers import AutoTokenizer

from helpers.errors import japanese_errors

with japanese_errors(cfg.MODEL):
    tokenizer = AutoTokenizer.from_pretrained(model_path)

ids = tokenizer(cfg.SENTENCE, add_special_tokens=False).input_ids
pd.DataFrame({"トークン": tokenizer.convert_ids_to_tokens(ids), "ID": ids}).T

# %% [markdown]
# ## 4. モデルを読み込む
# `AutoModelForCausalLM.from_pretrained` で重み (学習済みのパラメータ) を読み込みます。
# (細部の説明は読まなくて OK: `dtype` は 2 のセルで決めた精度、`attn_implementation="sdpa"` は PyTorch 標準の注意機構で、T4 でも動きます。
# fp16 (T4 で使う精度) が表せる数は 65504 までで、途中の値がそれを超えると計算が NaN (数でない値) になり、まともな答えが出ないモデルもあります (Gemma 2/3 など)。
# fp16 のときは 1 回だけ計算して確かめ、あふれたら理由を表示して fp32 で読み込み直します。)
#
# 初めて読み込むときは Hugging Face からダウンロードします (既定のモデルで約 3.8 GB)。Colab では英語の警告
# `The secret HF_TOKEN does not exist in your Colab secrets` が出ることがありますが、公開モデルの読み込みには不要なので、気にせず進めて大丈夫です
# (ここは読まなくて OK: この HF_TOKEN は Hugging Face の **アクセストークン** (合言葉のようなもの。文章のトークンとは別物) で、要るのは 05 で Hub にアップロードするときと、利用申請が必要なモデルのときだけです)。

# %%
import torch
from transformers import AutoModelForCausalLM

with japanese_errors(cfg.MODEL):
    model = AutoModelForCausalLM.from_pretrained(
        model_path, dtype=precision.dtype, attn_implementation="sdpa", device_map=precision.device)
    model, precision = models.fp16_checked(model, cfg.MODEL, precision, tokenizer=tokenizer)  # fp16 であふれたら fp32 に
print(f"{cfg.MODEL}: パラメータ数 {model.num_parameters() / 1e6:,.1f}M, メモリ {model.get_memory_footprint() / 2**20:,.0f} MiB")

# %% [markdown]
# ## 5. チャットテンプレートと `generate`
# 指示応答モデルは、学習したときと同じ書式 (**チャットテンプレート**) で質問を渡すとよく答えます。
# 書式はモデルごとに違うので、トークナイザーに入っているテンプレートを使います (ない場合は `ユーザー: …` / `システム:` の形)。
# 会話は `{"role": "user", "content": "質問"}` のような発言の並び (messages) で渡します。
# テンプレートで書いた質問を **プロンプト** (モデルへの入力) と呼びます。`generate` はプロンプトの続きを 1 トークンずつ予測して答えを作ります。
# `do_sample=False` は毎回いちばん確率の高いトークンを選ぶ設定 (greedy) で、何度実行しても同じ答えになります。
# 英語の警告 `The following generation flags are not valid and may be ignored: ...` が出ることがあります。モデルの設定 (`generation_config.json`) にある
# 答えにばらつきを出すための値 (temperature など) が、greedy では使われない、という知らせです。答えには影響しないので、気にせず進めて大丈夫です。
# (ここから説明は読まなくて OK) `eos_token_id` には **答えの終わりの印** を渡します。EOS (end of sequence) と、テンプレートがターンの終わりに書くトークン
# (`<|im_end|>`、`<end_of_turn>` など。EOS と違うモデルもあります) です。これを出したところで生成が止まります。

# %%
from helpers.prompts import ensure_pad_token, format_chat, prompt_ids, stop_ids

ensure_pad_token(tokenizer)  # バッチ処理用の埋め草 (pad) トークンがなければ決める

messages = [{"role": "user", "content": "日本の首都はどこですか？"}]
print(format_chat(tokenizer, messages))  # テンプレートで書いたプロンプト (モデルはこの続きを書く)
print("答えの終わりの印:", tokenizer.convert_ids_to_tokens(stop_ids(tokenizer)))
input_ids = torch.tensor([prompt_ids(tokenizer, messages)], device=model.device)
output_ids = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                            max_new_tokens=cfg.MAX_NEW_TOKENS, do_sample=False,
                            eos_token_id=stop_ids(tokenizer), pad_token_id=tokenizer.pad_token_id)
print("答え:", tokenizer.decode(output_ids[0, input_ids.shape[1]:], skip_special_tokens=True))

# %% [markdown]
# ## 6. 決まった質問に答えさせて保存する
# `datasets/baseline_questions.csv` の質問 (一般的な知識) に答えさせます。同じことを複数の質問にまとめて行うのが `helpers.generation.answer` です (中身は上の `generate` と同じです)。
# 04 でも同じ質問を **対照 (control)** として、「学習後に一般的な知識を忘れていないか」を確かめます。結果は出力フォルダの `baseline_answers.csv` に保存し、
# 04 は、ここでの答えと 04 での学習前の答えが同じかも確かめます (この 01 を飛ばしても 04 は動きます)。

# %%
from helpers import artefacts, data, generation, tables

questions = data.load_csv("../datasets/baseline_questions.csv")
baseline = pd.DataFrame({
    "question": questions["instruction"],
    "expected": questions["output"],
    "answer": generation.answer(model, tokenizer, questions["instruction"], max_new_tokens=cfg.MAX_NEW_TOKENS),
    "model": cfg.MODEL,
})
artefacts.save(out / artefacts.BASELINE, baseline, index=False)
tables.japanese(baseline)

# %% [markdown]
# ## まとめと次のステップ
# - 環境を確かめ、文章がトークンと ID になる様子を見ました。
# - モデルにチャットテンプレートで質問し、答えを `baseline_answers.csv` に保存しました。
#
# 次は **02_build_dataset** で、モデルに覚えさせたいデータ (質問と答えの組) を用意します。
#
# 先に下の最後のセル (おわり) を実行し、このランタイムを閉じてから (メニュー「ランタイム」→「ランタイムを接続解除して削除」。無料の GPU の利用時間を使わずに済みます)、次のノートブックを開いてください。
# 次のノートブックは新しいランタイムで開きます (02 は GPU を使わないので CPU のランタイムです)。結果は Google Drive を通って届きます。
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-finetune-ja/llm-finetune-ja/blob/main/notebooks/02_build_dataset.ipynb)

# %%
# @title おわり: 結果を Drive に書き終える
# @markdown Colab では、まだ Drive に届いていない書き込みを済ませて Drive を切り離し、このランタイムを閉じてよいことを表示します。ローカルの Jupyter では何もしません。
from helpers import colab

colab.finish()
