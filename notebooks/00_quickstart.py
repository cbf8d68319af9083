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
# # 00. クイックスタート: 1 つのランタイムで、学習の前と後を比べる
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-finetune-ja/llm-finetune-ja/blob/main/notebooks/00_quickstart.ipynb)
#
# **このノートブックでやること**: 日本語の **LLM** (大規模言語モデル) に、架空の国の事実 (「ルミナ王国の首都は？」→「ソラリスです。」) を
# **LoRA** (モデルに小さな部品を足して、そこだけを学習する方法) で覚えさせます。
# - モデルを読み込み、サンプルのデータ (質問と答えの組) を用意して、学習の前に質問してみる (まだ知らないので、正しくは答えられません)
# - LoRA で学習する (設定は既定のまま)
# - 同じ質問をもう一度して、学習の前と後を表で比べる
#
# **かかる時間**: Colab の T4 GPU で 15 分ほどの見込みです (モデルのダウンロード約 3.8 GB を含みます。T4 では測っていない見込みです)。
#
# **進め方**: メニューの「ランタイム」→「すべてのセルを実行」で最後まで進みます。説明やコードは今は読み飛ばしてもかまいませんが、セルはすべて実行してください。
# Google Drive は要りません。結果はこのランタイムの中 (`outputs/quickstart/`) に保存します。
# 各ステップは 01〜04 でくわしく説明しています (それぞれの節に、どこで学べるかを書いてあります)。
#
# Colab で開くと「このノートブックは Google が作成したものではありません」という警告が出ます。GitHub のノートブックではいつも出るので、「このまま実行」を押します。

# %%
# @title 0. セットアップ(最初に 1 回だけ実行)
# @markdown Colab では、このリポジトリ (helpers と datasets) を取得し、Colab に入っていないライブラリ (bitsandbytes と、グラフの日本語フォント matplotlib-fontja) だけを入れます。Colab にすでにあるライブラリ (PyTorch や transformers) は入れ替えないので、再起動は要りません。ローカルの Jupyter では何もしません。
# @markdown **USE_GOOGLE_DRIVE**: このノートブックは 1 つのランタイムで終わるので、Google Drive は使いません (オフのまま)。結果はランタイムの中の outputs/quickstart/ に保存し、ランタイムを閉じると消えます。開いたときの「このノートブックは Google が作成したものではありません」という警告は、GitHub のノートブックではいつも出ます。「このまま実行」を押します。
USE_GOOGLE_DRIVE = False  # @param {type:"boolean"}
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
# ## 1. 設定 (既定のままで OK)
# 既定のモデルは、無料の T4 でも学習できる、質問に答えるように作られた日本語のモデル `llm-jp/llm-jp-3.1-1.8b-instruct4` です。

# %%
# @title 設定 (既定のままで OK)
# @markdown **MODEL**: 使うモデル。一覧から選ぶか、Hugging Face の ID を入力します。`tiny` はネット不要の小さな練習用モデルです (答えの質は本物に及びません)。
MODEL = "llm-jp/llm-jp-3.1-1.8b-instruct4"  # @param ["llm-jp/llm-jp-3.1-1.8b-instruct4", "sbintuitions/sarashina2.2-1b-instruct-v0.1", "Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct", "tiny"] {allow-input: true}
# @markdown **CSV_PATH**: 学習データ (instruction と output の 2 列の CSV)。まずはサンプルのまま。自分の CSV は左の「ファイル」からアップロードして、ファイル名を書きます。
CSV_PATH = "../datasets/sample_fictional_facts.csv"  # @param {type:"string"}
# @markdown **EPOCHS**: データを何周学習するか。0 ならデータの行数から自動。ふつうは 2〜20。増やすとよく覚え、増やしすぎると関係ない質問にまで学習した答えを返します。
EPOCHS = 0  # @param {type:"integer"}
# @markdown **LEARNING_RATE**: 1 回の更新でモデルを直す大きさ。LoRA では 0.0001〜0.0003 (1e-4〜3e-4) がふつう。大きいと速く覚えますが壊れやすくなります。
LEARNING_RATE = 2e-4  # @param {type:"number"}

from helpers import settings

cfg = settings.collect(MODEL=MODEL, CSV_PATH=CSV_PATH, EPOCHS=EPOCHS, LEARNING_RATE=LEARNING_RATE)  # 範囲外の値は日本語で知らせる

# %% [markdown]
# ## 2. モデルを読み込む (くわしくは 01)
# `AutoTokenizer` が **トークナイザー** (文章を、モデルが読む番号の列に変えるもの) を、`AutoModelForCausalLM` がモデルを読み込みます。
# 初めてのときは Hugging Face からダウンロードするので、数分かかります (英語の進み具合の棒が出ます)。
# Colab では英語の警告 `The secret HF_TOKEN does not exist in your Colab secrets` が出ることがありますが、公開モデルには不要なので、そのまま進めて大丈夫です。

# %%
from transformers import AutoModelForCausalLM, AutoTokenizer

from helpers import artefacts, env, models
from helpers.errors import japanese_errors

out = env.output_dir() / artefacts.QUICKSTART  # 結果の保存先 (Colab ではこのランタイムの中の outputs/quickstart/)
precision = env.choose_precision(cfg.MODEL)  # 計算の精度 (T4 なら fp16)。Colab で GPU がなければ、ここで止まって選び方を表示
with japanese_errors(cfg.MODEL):
    tokenizer = AutoTokenizer.from_pretrained(models.resolve(cfg.MODEL))
    model = AutoModelForCausalLM.from_pretrained(models.resolve(cfg.MODEL), dtype=precision.dtype,
                                                 attn_implementation="sdpa", device_map=precision.device)
    model, precision = models.fp16_checked(model, cfg.MODEL, precision, tokenizer=tokenizer)  # fp16 で計算があふれるモデルは fp32 に (01 の 4)
print(f"{cfg.MODEL} を読み込みました。")

# %% [markdown]
# ## 3. 学習に使うデータと、確かめる質問 (くわしくは 02)
# サンプルは、架空の国の事実を 1 つにつき何通りかの言い方で聞く、質問と答えの組 40 行です。これを 2 つに分けます。
# - **train** (学習用、32 行): モデルに覚えさせる行。さらに、どのモデルも知っている **一般的な質問と答え** (「イギリスの首都は？」→「ロンドンです。」) を 16 行混ぜて学習します。
#   混ぜないと、関係ない質問にまで学習した答えを返しやすくなります
# - **heldout** (確かめ用、8 行): 学習に使わない言い換えの質問。覚えた事実を、聞き方が変わっても答えられるかを確かめます
#
# さらに、データと関係ない一般的な質問 (「日本の首都は？」、`datasets/baseline_questions.csv` の 5 問) を **control** (対照) にします。学習した答えが紛れ込まないか、元の知識を忘れていないかを見るためです。

# %%
from helpers import data

rows = data.load_csv(cfg.CSV_PATH)  # 空の行や列の名前の間違いは、行の番号つきの日本語で知らせます
splits = data.mix_general(data.split(rows, data.DEFAULT_VALIDATION_RATIO, seed=data.DEFAULT_SEED),
                          data.DEFAULT_GENERAL_ROWS, seed=data.DEFAULT_SEED)  # 02 の既定と同じ分け方と混ぜ方
control = data.load_csv("../datasets/baseline_questions.csv")  # 01 と同じ一般的な質問
known = set(data.last_turns(rows)[2])  # データにある質問は control にしない
control = control.filter(lambda row: row["instruction"] not in known)
own = data.own_rows(splits["train"])  # 自分のデータの行 (混ぜた一般的な行を除く)
# 区分ごとに (モデルに渡す質問, 正解, 表に出す質問)。多いデータでは 50 問まで (04 の EVAL_ROWS の既定)
questions = {"train": data.last_turns(data.first(own, 50)),
             "heldout": data.last_turns(data.first(splits["validation"], 50)),
             "control": (control["instruction"], control["output"], control["instruction"])}
print(f"学習用 {len(own)} 行 + 混ぜた一般的な質問 {len(splits['train']) - len(own)} 行、確かめ用 (heldout) {len(splits['validation'])} 行、control {len(control)} 問")
print("確かめ用 (heldout) の最初の 3 行:")
splits["validation"].to_pandas().head(3)

# %% [markdown]
# ## 4. 学習の前に聞いてみる (くわしくは 01)
# `helpers.generation.answer` が、質問をモデルが学習したときの書式 (**チャットテンプレート**) にして渡し、答えを書かせます (しくみは 01)。
# 長い答えは途中で切ります。
# 英語の警告 `The following generation flags are not valid and may be ignored` が出ることがあります。答えには影響しないので、気にせず進めて大丈夫です。

# %%
from helpers import generation

before = {split: generation.answer(model, tokenizer, prompts, progress=f"{split} 学習前")
          for split, (prompts, _, _) in questions.items()}
print(f"「{questions['train'][2][0]}」と聞くと: {before['train'][0]} (正解は {questions['train'][1][0]})")

# %% [markdown]
# ## 5. 学習用のデータをトークンにする: 答えだけを学習する (くわしくは 03 の 4)
# 質問と答えをチャットテンプレートで 1 つの文字列にしてトークン (番号の列) にし、**答えの部分だけ** を学習するように印を付けます。
# こうすると、モデルは質問の真似ではなく、答え方を学びます。下に、1 行目で学習する部分を表示します。

# %%
from helpers.prompts import IGNORE_INDEX, tokenize

train_data = tokenize(splits["train"], tokenizer, max_length=256)  # 02 の MAX_LENGTH の既定
learned = [label for label in train_data[0]["labels"] if label != IGNORE_INDEX]  # IGNORE_INDEX (-100) = 学習しない位置
print("1 行目の質問:", splits["train"][0]["instruction"])
print("そのうち学習する部分:", tokenizer.decode(learned, skip_special_tokens=True))

# %% [markdown]
# ## 6. LoRA を付ける (くわしくは 03 の 5)
# **LoRA** は、元のモデルは変えずに小さな部品を足して、その部品だけを学習します。
# 足す部分はモデル全体の 1% 未満の大きさなので、無料の T4 でも学習できます。設定の値 (r など) は 03 の既定と同じで、03 で説明します。

# %%
from peft import LoraConfig, get_peft_model
from transformers import set_seed

set_seed(data.DEFAULT_SEED)  # LoRA の初期値を毎回同じに
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules="all-linear",
                                         task_type="CAUSAL_LM"))  # 03 の既定と同じ
trainable, total = model.get_nb_trainable_parameters()
print(f"LoRA で学習する数値 (パラメータ) の数: {trainable:,} / モデル全体 {total:,} ({trainable / total:.2%})"
      + (" ※練習用の tiny はとても小さいので割合が大きく出ます" if cfg.MODEL == models.TINY else ""))

# %% [markdown]
# ## 7. 学習する (くわしくは 03 の 6)
# `TrainingArguments` に設定をまとめ、`Trainer` が学習を進めます。学習は、数行読むたびにモデルを少し直すこと (更新) のくり返しです。
# **エポック** はデータを何周するか、**学習率** は 1 回の更新でモデルをどれだけ直すかです。
# エポック数は、既定 (0) ならデータの行数から決めます (サンプルでは 7)。始まると、終わるまでの時間の見積もりを表示します。
# 表の `Step` は更新の回数、`Training Loss` (**損失**) は答えをどれだけ外したかで、下がっていけば覚えています。ほかの設定の意味は 03 で説明します。
# モデルによっては英語の `The tokenizer has new PAD/BOS/EOS tokens ...` が出ます。モデルの設定をトークナイザーにそろえたという知らせなので、気にせず進めて大丈夫です。

# %%
from transformers import DataCollatorWithFlattening, Trainer, TrainingArguments

from helpers import overflow, schedule

epochs = cfg.EPOCHS or schedule.auto_epochs(len(train_data))
model.config.use_cache = False  # 行をつないで学習するため (03 の 6)
args = TrainingArguments(output_dir=str(out), num_train_epochs=epochs, learning_rate=cfg.LEARNING_RATE,
                         per_device_train_batch_size=4, lr_scheduler_type="cosine", logging_strategy="epoch",
                         save_strategy="no", fp16=precision.fp16, bf16=precision.bf16,
                         logging_nan_inf_filter=False,  # NaN の損失も記録に残し、overflow.guard() が止められるように
                         use_cpu=precision.device == "cpu", seed=data.DEFAULT_SEED, report_to="none")
env.prepare_cpu()
print(f"{epochs} エポック学習します。")
with japanese_errors("学習"):  # メモリ不足、書き込めない出力フォルダなどを、日本語の説明に
    trainer = Trainer(model=model, args=args, train_dataset=train_data, processing_class=tokenizer,
                      data_collator=DataCollatorWithFlattening(separator_id=IGNORE_INDEX),  # 詰め物なしで行をつなぐ
                      callbacks=[overflow.guard(), schedule.time_callback()])  # 数があふれたら止める、残り時間の表示
    trainer.train()

# %% [markdown]
# ## 8. もう一度聞いて、学習の前と後を比べる (くわしくは 04)
# 同じ質問に、学習したモデルで答えさせます。表の ○ は正解 (**完全一致**: 空白や句読点、全角と半角の違いを除いて正解と同じ)、× は不正解です。
# 上に出るまとめの行の「文字 F1」は、惜しい答えにも付く部分点です (くわしくは 04)。
# - **train**: 覚えたか (混ぜた一般的な質問を除く 32 問) / **heldout**: 言い換えても答えられるか / **control**: 関係ない質問に学習した答えが紛れ込んでいないか (**紛れ込み**、オレンジ色)
#
# 学習前のモデルは長い文で答えることが多いので、中身が正しくても × になることがあります (学習後は、データと同じ短い答え方になります)。○ × だけでなく、答えの列も見てください。
#
# うまくいったかの目安: 学習後に train がほぼ ○、heldout が半分以上 ○、control の紛れ込みが 0 か 1 問。

# %%
import pandas as pd

from helpers import tables

after = {split: generation.answer(model, tokenizer, prompts, progress=f"{split} 学習後")
         for split, (prompts, _, _) in questions.items()}
trained = data.trained_answers(own)  # 学習した答え (control に出たら紛れ込み)
table = pd.concat([tables.comparison(split, shown, expected, before[split], after[split], trained)
                   for split, (_, expected, shown) in questions.items()], ignore_index=True)
print(f"保存しました: {artefacts.save(out / artefacts.COMPARISON, table, index=False)}")
print(tables.headline(table))
tables.highlight(table)

# %% [markdown]
# ## 9. ほかの日本語の力は落ちていない？ (くわしくは 04 の 8)
# 覚えさせたことと関係ない課題 (日本語の LLM の比較によく使われる ELYZA-tasks-100 の最初の 10 問) の模範解答を、学習の前と後のモデルがどれだけ「意外」と感じるか (perplexity) を比べます。
# 学習後に大きく上がったら、覚えさせすぎて、ほかの日本語の力が落ちています (エポック数か学習率を下げます)。答えを書かせて並べるのは 04 です。

# %%
from helpers import general

general_table = general.compare(model, tokenizer, 10, answers=False)  # 模範解答の perplexity だけ (答えは書かせない)
artefacts.save(out / artefacts.GENERAL, general_table[general.COLUMNS], index=False)
print(general.reading(general_table))

# %% [markdown]
# ## 10. 自分で質問してみる
# 質問を入力すると、学習した答えを表示します (学習前と並べて表示します)。架空の国のことを、データにない聞き方で聞いてみましょう。

# %%
from helpers import chat

chat.box(model, tokenizer)

# %% [markdown]
# ## まとめと次のステップ
# ここまでに出てきた言葉です (くわしくは 01〜04 で、もう一度出てきます)。
# - **LLM**: 大規模言語モデル。文章の続きを書くしくみで、質問に答えます
# - **LoRA**: 元のモデルは変えずに、足した小さな部品だけを学習する方法
# - **トークナイザー**: 文章を、モデルが読む番号の列 (トークン) に変えるもの
# - **train** / **heldout** / **control**: 覚えさせる質問 / 学習に使わない言い換えの質問 / データと関係ない一般的な質問
# - **一般的な質問と答え**: train に混ぜる、どのモデルも知っている行。関係ない質問にまで学習した答えを返さないため
# - **チャットテンプレート**: 質問を、モデルが学習したときの書式にすること
# - **答えの部分だけ** を学習する: 質問の真似ではなく、答え方を学ばせる印
# - **エポック** / **学習率** / **損失**: データを何周するか / 1 回の更新でどれだけ直すか / 答えをどれだけ外したか
# - **完全一致** / **紛れ込み**: 正解と同じ答え (○) / control に学習した答えが出ること
#
# - 学習の前には答えられなかった架空の事実を、LoRA で覚えさせ、言い換えた質問 (heldout) と関係ない質問 (control) で確かめました。
#   表は `comparison.csv` として出力フォルダに保存しました (Colab では左の「ファイル」の `llm-finetune-ja/outputs/quickstart/`。ランタイムを閉じると消えるので、残すならダウンロードします)。
# - heldout の正解が少ないときは、エポック数を増やしてもう一度 (「ランタイム」→「すべてのセルを実行」)。control に紛れ込みが出たら、エポック数を減らします。
#
# 次は、自分のデータで。各ステップをくわしく学びながら進むなら 01 から、すぐに自分の CSV を使うなら 02 から始めます
# (02 → 03 → 04 はノートブックごとに別のランタイムで、結果は Google Drive を通って次に届きます)。
# 下の「おわり」のセルを実行してから、このランタイムを閉じてください (メニューの「ランタイム」→「ランタイムを接続解除して削除」。無料の GPU の時間を使わずに済みます)。
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-finetune-ja/llm-finetune-ja/blob/main/notebooks/01_inference_before_tuning.ipynb) 01: モデルを動かしてみる
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-finetune-ja/llm-finetune-ja/blob/main/notebooks/02_build_dataset.ipynb) 02: 自分のデータを用意する

# %%
# @title おわり: 結果を Drive に書き終える
# @markdown Colab では、まだ Drive に届いていない書き込みを済ませて Drive を切り離し、このランタイムを閉じてよいことを表示します。ローカルの Jupyter では何もしません。
from helpers import colab

colab.finish()
