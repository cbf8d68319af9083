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
# # 02. 学習用データセットを作る
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-finetune-ja/llm-finetune-ja/blob/main/notebooks/02_build_dataset.ipynb)
#
# **このノートブックでやること**
# 1. 「質問 (instruction) と答え (output)」の組を、自分の CSV か Hugging Face Hub のデータセットから読み込む
# 2. 中身を確かめる (空のセルなどがあれば、何行目をどう直せばよいかを表示します)
# 3. 1 行が何トークンになるかを調べる (長すぎる行は学習時に切れてしまいます)
# 4. 学習用 (train) と検証用 (validation) に分けて、出力フォルダに保存する
#
# **かかる時間**: 1〜2 分。
#
# 既定のデータは `datasets/sample_fictional_facts.csv`: 架空の国・村・山についての **架空の事実** です。
# モデルが元々知らない事実なので、学習で覚えたかどうかがはっきり分かります。
# 1 つの事実につき言い回しの違う質問が 5 つあり、一部を検証用に取っておくことで「言い換えた質問にも答えられるか」を確かめます。

# %%
# @title 0. セットアップ(最初に 1 回だけ実行)
# @markdown Colab では、このリポジトリ (helpers と datasets) を取得し、動作確認済みのバージョンのライブラリを入れます。Colab の PyTorch (CUDA 版) はそのまま使います。ローカルの Jupyter では何もしません。
# @markdown Google Drive を使うと、接続が切れても学習結果が Drive に残ります。
USE_GOOGLE_DRIVE = True  # @param {type:"boolean"}
import os, subprocess, sys

REPO_URL = "https://github.com/llm-finetune-ja/llm-finetune-ja"
if "google.colab" in sys.modules:
    REPO_DIR = "/content/" + REPO_URL.rstrip("/").rsplit("/", 1)[-1]
    if not os.path.isdir(REPO_DIR):
        subprocess.run(["git", "clone", "--depth", "1", REPO_URL, REPO_DIR], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", f"{REPO_DIR}/requirements.txt"], check=True)
    sys.path.insert(0, REPO_DIR)
    os.chdir(f"{REPO_DIR}/notebooks")
    if USE_GOOGLE_DRIVE:
        from google.colab import drive
        drive.mount("/content/drive")
import helpers

# %% [markdown]
# ## 1. データの読み込み
# - **csv**: 自分で作った CSV。見出しは `instruction,output` (ひな形: `datasets/template.csv`)。Excel の「CSV UTF-8」で保存してください。Colab では左の「ファイル」からアップロードし、そのパスを `CSV_PATH` に書きます。
# - **hub**: Hugging Face Hub のデータセット ID (例: `kunishou/databricks-dolly-15k-ja`)。列名が違うときは、どの列が質問・入力・答えかを指定します。ローカルの `.jsonl` / `.csv` / `.parquet` ファイルのパスも使えます。

# %%
# @title データの設定
SOURCE = "csv"  # @param ["csv", "hub"]
CSV_PATH = "../datasets/sample_fictional_facts.csv"  # @param {type:"string"}
# @markdown hub のとき:
DATASET_ID = "kunishou/databricks-dolly-15k-ja"  # @param {type:"string"}
HUB_SPLIT = "train"  # @param {type:"string"}
INSTRUCTION_COLUMN = "instruction"  # @param {type:"string"}
INPUT_COLUMN = "input"  # @param {type:"string"}
OUTPUT_COLUMN = "output"  # @param {type:"string"}
ROW_LIMIT = 1000  # @param {type:"integer"}
# @markdown 分割とトークン長:
VALIDATION_RATIO = 0.2  # @param {type:"number"}
SEED = 42  # @param {type:"integer"}
MODEL = "llm-jp/llm-jp-3.1-1.8b-instruct4"  # @param ["llm-jp/llm-jp-3.1-1.8b-instruct4", "sbintuitions/sarashina2.2-1b-instruct-v0.1", "Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct", "tiny"] {allow-input: true}
MAX_LENGTH = 256  # @param {type:"integer"}

import pandas as pd

from helpers import data, env, settings

cfg = settings.collect(SOURCE=SOURCE, CSV_PATH=CSV_PATH, DATASET_ID=DATASET_ID, HUB_SPLIT=HUB_SPLIT,
                       INSTRUCTION_COLUMN=INSTRUCTION_COLUMN, INPUT_COLUMN=INPUT_COLUMN,
                       OUTPUT_COLUMN=OUTPUT_COLUMN, ROW_LIMIT=ROW_LIMIT, VALIDATION_RATIO=VALIDATION_RATIO,
                       SEED=SEED, MODEL=MODEL, MAX_LENGTH=MAX_LENGTH)
out = env.output_dir()

if cfg.SOURCE == "csv":
    dataset = data.load_csv(cfg.CSV_PATH)
else:
    dataset = data.load_hub(cfg.DATASET_ID, split=cfg.HUB_SPLIT, instruction=cfg.INSTRUCTION_COLUMN,
                            output=cfg.OUTPUT_COLUMN, input=cfg.INPUT_COLUMN, limit=cfg.ROW_LIMIT, seed=cfg.SEED)
print(f"{len(dataset)} 行を読み込みました。")
dataset.to_pandas().head(8)

# %% [markdown]
# ## 2. 1 行は何トークン？
# 学習では 1 行を「プロンプト (チャットテンプレートで包んだ質問) + 答え + EOS」のトークン列にします。
# **EOS** (end of sequence) は「ここで答えが終わり」という印のトークンで、これを学ばないとモデルは答えを止められません。
# `MAX_LENGTH` を超える行は後ろが切れてしまうので、ここで数を確かめます。

# %%
from transformers import AutoTokenizer

from helpers import models, plots
from helpers.errors import japanese_errors
from helpers.prompts import build_example

with japanese_errors(cfg.MODEL):
    tokenizer = AutoTokenizer.from_pretrained(models.resolve(cfg.MODEL))
lengths = [len(build_example(tokenizer, row["instruction"], row["output"], 10**9)["input_ids"]) for row in dataset]
too_long = sum(length > cfg.MAX_LENGTH for length in lengths)
print(f"MAX_LENGTH={cfg.MAX_LENGTH} を超える行: {too_long} / {len(lengths)}")
plots.length_histogram(lengths, cfg.MAX_LENGTH)
pd.Series(lengths, name="トークン数").describe().round(1).to_frame().T

# %% [markdown]
# ## 3. 学習用と検証用に分けて保存
# 検証用 (validation) の行は学習に使いません。学習後、覚えた質問 (train) と、見ていない言い回し (validation) の両方で答えを比べます。
# 同じ `SEED` なら、何度実行しても同じ分け方になります。

# %%
splits = data.split(dataset, cfg.VALIDATION_RATIO, seed=cfg.SEED)
folder = data.save_prepared(splits, out)
print(f"保存しました: {folder}  (train {len(splits['train'])} 行 / validation {len(splits['validation'])} 行)")
splits["validation"].to_pandas()

# %% [markdown]
# ## まとめと次のステップ
# - データを読み込んで確かめ、トークン数を調べ、train / validation に分けて出力フォルダの `prepared/` に保存しました。
#
# 次は **03_lora_finetune** で、このデータを使ってモデルを LoRA でファインチューニングします。
