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
# # 04. 学習の前と後を比べる
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-finetune-ja/llm-finetune-ja/blob/main/notebooks/04_compare_after_tuning.ipynb)
#
# **このノートブックでやること**
# 1. 元のモデルに 03 で学習したアダプターを組み合わせて読み込む
# 2. 同じ質問に「学習前」と「学習後」で答えさせ、表に並べる
#    - **train**: 学習に使った質問 (覚えたか)
#    - **heldout**: 学習に使わなかった言い換えの質問 (応用できたか)
#    - **control**: データに無い一般的な質問 (01 の質問)。学習した答えが紛れ込んでいないか、元の知識を忘れていないか
# 3. 完全一致 (exact match) と文字単位の F1 スコアで採点し、`comparison.csv` に保存する
#
# **かかる時間**: T4 で 2〜3 分、練習用モデルなら CPU で 1 分以内。
#
# 先に **01**, **02**, **03** を実行しておいてください。

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
# ## 1. 設定と、前のノートブックの結果の読み込み
# モデル名と学習設定は 03 が保存した `train_settings.json` から読みます。

# %%
# @title 生成の設定
MAX_NEW_TOKENS = 64  # @param {type:"integer"}

import pandas as pd

from helpers import data, env, settings

cfg = settings.collect(MAX_NEW_TOKENS=MAX_NEW_TOKENS)
out = env.output_dir()
trained = settings.load(env.require(out / "train_settings.json", "03_lora_finetune.ipynb"))
adapter_dir = env.require(out / "adapter", "03_lora_finetune.ipynb")
splits = data.load_prepared(out)
baseline = pd.read_csv(env.require(out / "baseline_answers.csv", "01_inference_before_tuning.ipynb"),
                       keep_default_na=False)
print(f"モデル: {trained.MODEL} / アダプター: {adapter_dir}")

# %% [markdown]
# ## 2. 元のモデル + アダプターを読み込む
# `PeftModel.from_pretrained` で、元のモデルに LoRA アダプターを重ねます。03 で 4 ビット (QLoRA) にしたときは、ここでも 4 ビットで読み込みます。
# `with model.disable_adapter():` の中ではアダプターが外れ、学習前と同じ答えになります。

# %%
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

from helpers import models
from helpers.errors import japanese_errors

precision = env.choose_precision()
quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=precision.dtype) if trained.USE_4BIT else None
with japanese_errors(trained.MODEL):
    tokenizer = AutoTokenizer.from_pretrained(models.resolve(trained.MODEL))
    base = AutoModelForCausalLM.from_pretrained(
        models.resolve(trained.MODEL), dtype=precision.dtype, attn_implementation="sdpa",
        quantization_config=quantization, device_map=precision.device)
model = PeftModel.from_pretrained(base, adapter_dir)

# %% [markdown]
# ## 3. 学習前と学習後で答えさせる
# 学習データに無い 01 の質問が control です。control の期待する答えは一般的な知識 (01 の `expected`) です。
# 02 で text を選んだときは、質問の代わりに段落の書き出しを渡して続きを書かせ、段落ごとの **perplexity** も比べます。

# %%
from helpers import generation, scores

if data.is_text(splits):
    control = baseline
    texts = {"train": splits["train"]["text"], "heldout": splits["validation"]["text"]}
    with model.disable_adapter():
        before_ppl = {name: generation.perplexity(model, tokenizer, t) for name, t in texts.items()}
    after_ppl = {name: generation.perplexity(model, tokenizer, t) for name, t in texts.items()}
    perplexity = pd.DataFrame({"perplexity_before": before_ppl, "perplexity_after": after_ppl}).round(2)
    perplexity.to_csv(out / "perplexity.csv")
    display(perplexity)
    question_sets = {name: (*data.continuations(t), False) for name, t in texts.items()}
    trained_answers = []
else:
    known = set(splits["train"]["instruction"]) | set(splits["validation"]["instruction"])
    control = baseline[~baseline["question"].isin(known)]
    question_sets = {"train": (splits["train"]["instruction"], splits["train"]["output"], True),
                     "heldout": (splits["validation"]["instruction"], splits["validation"]["output"], True)}
    trained_answers = sorted(set(splits["train"]["output"]))
question_sets["control"] = (list(control["question"]), list(control["expected"]), True)

tables = []
for split, (questions, expected, chat) in question_sets.items():
    with model.disable_adapter():
        before = generation.answer(model, tokenizer, questions, max_new_tokens=cfg.MAX_NEW_TOKENS, chat=chat)
    after = generation.answer(model, tokenizer, questions, max_new_tokens=cfg.MAX_NEW_TOKENS, chat=chat)
    tables.append(scores.comparison(split, questions, expected, before, after, trained_answers))
table = pd.concat(tables, ignore_index=True)
table.to_csv(out / "comparison.csv", index=False)
if set(baseline["model"]) != {trained.MODEL}:
    print(f"注意: 01 は {set(baseline['model'])} で実行されています。03 と同じモデル ({trained.MODEL}) で 01 を実行し直すと比べやすくなります。")
elif len(control):
    same = (control["answer"].values == table.loc[table["split"] == "control", "before"].values).mean()
    print(f"01 で保存した答えと、ここでの学習前の答えの一致率 (control): {same:.0%}")
scores.highlight(table)

# %% [markdown]
# ## 4. まとめの数字
# - **exact match**: 正規化 (全角/半角の統一、空白と文末の句読点の除去) してから答えが正解と完全に同じ割合
# - **char F1**: 答えと正解に共通する文字の割合 (0〜1)。惜しい答えにも部分点が付きます
# - **leaked**: control の答えに学習した答えが紛れ込んだ数。0 でなければ、関係ない質問にまで学習内容を答えています
# - **distinct**: 学習後の答えの種類の数。質問ごとに違う答えを覚えたなら、事実の数と同じくらいになります

# %%
summary = scores.summary(table)
summary.to_csv(out / "summary.csv")
print(scores.headline(table))
summary

# %% [markdown]
# ## まとめと次のステップ
# - 学習前と学習後の答えを並べ、train / heldout / control ごとに採点して `comparison.csv` と `summary.csv` に保存しました。
# - heldout が低いときは、言い回しを増やしたデータで学習し直すと改善します。control に leaked が出たら、エポック数を減らすか学習率を下げてください。
# - control の正解率が学習前より下がったら、元の知識を少し忘れています (練習用モデルでは「富士山の高さ」が崩れます)。学習したデータに似た種類の質問ほど影響を受けます。
#
# 次の一歩: 02 で自分の CSV に差し替えて、同じ流れをもう一度試してみましょう。
