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
# 1. 学習データを用意する。既定はサンプルの CSV で、1 行が「質問 (instruction) と答え (output)」の組です
#    (ほかに Hugging Face Hub のデータセット、何往復かの会話、ただの文章、自動で作る計算問題も使えます。2B〜2E の節です。csv のままなら、その説明もフォームも見なくて OK)
# 2. 中身を確かめる (壊れた行があれば、何行目をどう直せばよいかを表示します)
# 3. 1 行が何 **トークン** (モデルが文章を区切って読む単位。日本語では 1〜数文字) になるかを調べる (長すぎる行は学習時に切れてしまいます)
# 4. 学習用 (train) と検証用 (validation) に分けて、出力フォルダに保存する
#
# **かかる時間**: 1〜2 分。
#
# **GPU は要りません**: 02 で使うのはトークナイザーだけです。Colab ではバッジから開くと、GPU のない (CPU の) ランタイムで開きます。そのままで大丈夫です。
# 学習する 03 と、比べる 04 は、T4 GPU のランタイムで開きます。
#
# **最短コース**: 既定のまま (サンプルの CSV)、上から順にセルを実行するだけで進めます。見出しに「説明は読まなくて OK・セルは実行」「開かなくて OK・セルは実行」とある節は、説明やフォームはあとで見れば大丈夫です。ただしセルは飛ばさずに実行してください。
#
# 既定のデータは `datasets/sample_fictional_facts.csv`: 架空の国・村・山についての **架空の事実** です。
# モデルが元々知らない事実なので、学習で覚えたかどうかがはっきり分かります。
# 1 つの事実につき言い回しの違う質問が 5 つあり、一部を検証用に取っておくことで「言い換えた質問にも答えられるか」を確かめます。

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
# ## 1. データの用意のしかたを選ぶ
# `SOURCE` で選んだ方法のセルだけが働きます (ほかのセルは実行しても何もしません)。最短コースは `csv` のままです。2B〜2E は、説明もフォームも開かなくて OK です (セルは上から順に実行してください。`SOURCE` が違えば何もしません)。
# 口調を覚えさせる例を試すなら、2A の `CSV_PATH` を `../datasets/sample_style_cat.csv` (答えが猫の口調「〜だにゃ。」の 50 行) にします。

# %%
# @title データ源と共通の設定
# @markdown **SOURCE**: データの用意のしかた。csv (自分の CSV かサンプル。既定)、hub (Hugging Face Hub のデータセット)、conversations (会話のデータ)、text (ただの文章)、arithmetic (自動で作る計算問題)。選んだものの節 (2A〜2E) の設定だけが使われます。
SOURCE = "csv"  # @param ["csv", "hub", "conversations", "text", "arithmetic"]
# @markdown **VALIDATION_RATIO**: 学習に使わず、覚えたかの確認に取っておく行の割合。ふつうは 0.1〜0.2。大きいと確認は確かになり、学習に使える行は減ります。
VALIDATION_RATIO = 0.2  # @param {type:"slider", min:0.05, max:0.5, step:0.05}
# @markdown **SEED**: 乱数の種 (分け方や初期値が決まります)。どの値でも、同じ値なら同じ結果。
SEED = 42  # @param {type:"integer"}
# @markdown **MODEL**: 03 で学習するモデル (Hugging Face でのモデルの名前)。「01 と同じ」なら 01 で選んだもの (01 を飛ばしたなら、質問に答えるよう調整済みの llm-jp)。ここではトークン数を数えるためにトークナイザーだけを使います。03 は「02 と同じ」でこれを使います。
MODEL = "01 と同じ"  # @param ["01 と同じ", "llm-jp/llm-jp-3.1-1.8b-instruct4", "sbintuitions/sarashina2.2-1b-instruct-v0.1", "Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct", "tiny"] {allow-input: true}
# @markdown **MAX_LENGTH**: 1 行 (質問 + 答え) のトークン数の上限。ふつうは 128〜1024。大きいと長い行も切れずに学習できますが、メモリと時間が増えます。
MAX_LENGTH = 256  # @param {type:"integer"}
# @markdown **GENERAL_ROWS**: 学習用に混ぜる一般的な質問と答え (datasets/general_qa_ja.csv、全 35 行) の行数。ふつうは 0〜20。混ぜると、学習した答えが関係ない質問に紛れ込みにくくなります (5 で説明します)。増やすと、04 で紛れ込みを数える残りの質問が減ります。0 なら混ぜません。
GENERAL_ROWS = 16  # @param {type:"integer"}

import pandas as pd

from helpers import data, env, settings

cfg = settings.collect(SOURCE=SOURCE, VALIDATION_RATIO=VALIDATION_RATIO, SEED=SEED, MODEL=MODEL,
                       MAX_LENGTH=MAX_LENGTH, GENERAL_ROWS=GENERAL_ROWS)
out = env.output_dir()
cfg = settings.inherit(cfg, data.model_of_01(out), "01", data.DEFAULT_SETTINGS)  # 「01 と同じ」を 01 で選んだモデルに
dataset = splits = None

# %% [markdown]
# ## 2A. 自分の CSV (`SOURCE = "csv"`)
# 見出しは `instruction,output` (質問と答え)。`input` 列 (質問に添える補足) があれば、質問の下に付けて使います。
# ひな形は `datasets/template.csv` です。Excel で保存した CSV をそのまま読めます。
# Colab では左の「ファイル」からアップロードして、そのパスを `CSV_PATH` に書きます。
#
# (ここから説明は読まなくて OK) 文字コードは「CSV UTF-8」でも普通の「CSV」(Shift_JIS) でも構いません。
# 読み込む前に、よくある壊れ方をすべて調べます: 答えが次の行に分かれている、空のセル、空白だけのセル、
# 見出しのつづり違い、同じ行の重複、コンマを含む答えを `""` で囲み忘れた行。行番号は表計算ソフトで見える番号です。
# - `LENIENT` がオフ (strict): 問題が 1 つでもあれば、すべての問題を表示して止まります。
# - `LENIENT` がオン: 問題のない行だけを使い、除いた行をすべて、行番号と理由と直し方つきで表示します。
#
# アップロード前にパソコンで確かめることもできます: `python -m helpers.data check ファイル.csv`

# %%
# @title CSV の設定
# @markdown **CSV_PATH**: 読み込む CSV のパス。既定はサンプル (架空の事実 40 行)。Colab では左の「ファイル」にアップロードして、そのパスを書きます。
CSV_PATH = "../datasets/sample_fictional_facts.csv"  # @param {type:"string"}
# @markdown **LENIENT**: 壊れた行があったときの扱い。オフ (既定) なら、問題をすべて表示して止まります。オンなら、問題のない行だけを使い、除いた行を表示します。
LENIENT = False  # @param {type:"boolean"}

csv_cfg = settings.collect(CSV_PATH=CSV_PATH, LENIENT=LENIENT)
if cfg.SOURCE == "csv":
    dataset = data.load_csv(csv_cfg.CSV_PATH, lenient=csv_cfg.LENIENT)

# %% [markdown]
# これは例です (あなたのデータではありません)。壊れた CSV の例 (`datasets/broken_example.csv`) を調べると、こう表示されます:

# %%
from helpers import csvfile

report = csvfile.check("../datasets/broken_example.csv")
print(report.describe().splitlines()[0])
report.table()

# %% [markdown]
# ## 2B. Hugging Face Hub のデータセット (`SOURCE = "hub"` のときだけ。csv のままなら開かなくて OK・セルは実行)
# データセットの ID と、どの列が質問 (instruction)・補足 (input)・答え (output) かを指定します。
# `DROP_IF` に「列名 == 値」と書くと、その行を除きます (例: `kunishou/hh-rlhf-49k-ja` の `ng_translation == 1`)。
# 大きなデータセットは `ROW_LIMIT` 行だけを `SEED` で選びます (同じ SEED なら同じ行)。ローカルの `.jsonl` / `.json` / `.csv` / `.parquet` のパスも使えます。
# 使えずに除いた行 (質問か答えが空、`DROP_IF` に当てはまる、など) は、すべて行番号と理由を表示します。会話のデータを指定したときは、読み方 (`SOURCE`) を教えて止まります。

# %%
# @title Hub の設定 (SOURCE = "hub" のときだけ。csv のままなら開かなくて OK・セルは実行)
# @markdown **DATASET_ID**: Hugging Face Hub のデータセットの ID (ローカルの .jsonl / .csv / .parquet のパスも可)。
DATASET_ID = "kunishou/databricks-dolly-15k-ja"  # @param {type:"string"}
# @markdown **HUB_SPLIT**: 使う split (データセットの中の区分。多くは train)。conversations でも使います。ローカルのファイルには区分がないので train のままにします (.json の {"train": [...], "test": [...]} だけは、その名前で選べます)。
HUB_SPLIT = "train"  # @param {type:"string"}
# @markdown **INSTRUCTION_COLUMN**: 質問が入っている列の名前。
INSTRUCTION_COLUMN = "instruction"  # @param {type:"string"}
# @markdown **INPUT_COLUMN**: 質問に添える補足が入っている列の名前。なければ空欄にします。
INPUT_COLUMN = "input"  # @param {type:"string"}
# @markdown **OUTPUT_COLUMN**: 答えが入っている列の名前。
OUTPUT_COLUMN = "output"  # @param {type:"string"}
# @markdown **DROP_IF**: 除く行の条件を「列名 == 値」で書きます (例: ng_translation == 1)。空欄なら除きません。conversations でも使います。
DROP_IF = ""  # @param {type:"string"}
# @markdown **ROW_LIMIT**: 使う行数 (無作為に選びます)。0 ならすべての行。多いほど学習に時間がかかります。conversations でも使います。
ROW_LIMIT = 1000  # @param {type:"integer"}

hub_cfg = settings.collect(DATASET_ID=DATASET_ID, HUB_SPLIT=HUB_SPLIT, INSTRUCTION_COLUMN=INSTRUCTION_COLUMN,
                           INPUT_COLUMN=INPUT_COLUMN, OUTPUT_COLUMN=OUTPUT_COLUMN, DROP_IF=DROP_IF,
                           ROW_LIMIT=ROW_LIMIT)
if cfg.SOURCE == "hub":
    dataset = data.load_hub(hub_cfg.DATASET_ID, split=hub_cfg.HUB_SPLIT, instruction=hub_cfg.INSTRUCTION_COLUMN,
                            output=hub_cfg.OUTPUT_COLUMN, input=hub_cfg.INPUT_COLUMN, drop_if=hub_cfg.DROP_IF,
                            limit=hub_cfg.ROW_LIMIT, seed=cfg.SEED)

# %% [markdown]
# ## 2C. 会話のデータ (`SOURCE = "conversations"` のときだけ。csv のままなら開かなくて OK・セルは実行)
# Hub にある新しい指示データの多くは、1 問 1 答ではなく **会話** (発言の並び) の形です。よくある形式は 2 つです。
# - **messages** (OpenAI 形式): `{"messages": [{"role": "system", "content": "…"}, {"role": "user", "content": "…"}, {"role": "assistant", "content": "…"}, …]}`
# - **sharegpt**: `{"conversations": [{"from": "human", "value": "…"}, {"from": "gpt", "value": "…"}, …]}`
#
# `CONVERSATION_FORMAT` で形式を選びます。列名や役割の名前がデータと違うときだけ、下の欄に書きます (空欄なら形式の既定の名前)。
# system の発言 (モデルへの指示) も会話に入れて渡します。ただしテンプレートによっては、system を最初の user の発言に含めたり (Gemma 3)、
# 決まった文に置き換えたり (llm-jp-3) します。置き換えられるときは、下の 4 で注意を表示します。
# 03 では **すべての assistant の発言** を学習し、04 では各会話の **最後の答え** を学習前後で比べます。
# Hub の ID のほかに、ローカルの `.jsonl` / `.json` / `.parquet` も読めます。split と行数の上限と除く条件は 2B の `HUB_SPLIT` と `ROW_LIMIT` と `DROP_IF` を使います。
# 既定の `datasets/sample_conversations_ja.jsonl` は、system の指示のあとに 2 往復する会話 40 件です (あいさつのあと、架空の国や町や山について質問)。
# 最後の答えは `sample_fictional_facts.csv` と同じ架空の事実です。

# %%
# @title 会話データの設定 (SOURCE = "conversations" のときだけ。csv のままなら開かなくて OK・セルは実行)
# @markdown **CONVERSATIONS**: 会話のデータ (Hub の ID か、ローカルの .jsonl / .json / .parquet のパス)。既定はサンプルの会話 40 件。
CONVERSATIONS = "../datasets/sample_conversations_ja.jsonl"  # @param {type:"string"}
# @markdown **CONVERSATION_FORMAT**: 会話の形式。messages (OpenAI 形式) か sharegpt。
CONVERSATION_FORMAT = "messages"  # @param ["messages", "sharegpt"]
# @markdown ここから下は、データの名前が形式の既定と違うときだけ書きます (空欄 = 既定)。
# @markdown **MESSAGES_COLUMN**: 会話が入っている列の名前 (既定: messages / conversations)。
MESSAGES_COLUMN = ""  # @param {type:"string"}
# @markdown **ROLE_KEY**: 発言の話し手を表す項目の名前 (既定: role / from)。
ROLE_KEY = ""  # @param {type:"string"}
# @markdown **CONTENT_KEY**: 発言の中身を表す項目の名前 (既定: content / value)。
CONTENT_KEY = ""  # @param {type:"string"}
# @markdown **USER_ROLE**: 質問する側 (user) の話し手の名前。
USER_ROLE = ""  # @param {type:"string"}
# @markdown **ASSISTANT_ROLE**: 答える側 (assistant) の話し手の名前。
ASSISTANT_ROLE = ""  # @param {type:"string"}
# @markdown **SYSTEM_ROLE**: モデルへの指示 (system) の話し手の名前。
SYSTEM_ROLE = ""  # @param {type:"string"}

chat_cfg = settings.collect(CONVERSATIONS=CONVERSATIONS, CONVERSATION_FORMAT=CONVERSATION_FORMAT,
                            MESSAGES_COLUMN=MESSAGES_COLUMN, ROLE_KEY=ROLE_KEY, CONTENT_KEY=CONTENT_KEY,
                            USER_ROLE=USER_ROLE, ASSISTANT_ROLE=ASSISTANT_ROLE, SYSTEM_ROLE=SYSTEM_ROLE)
if cfg.SOURCE == "conversations":
    dataset = data.load_conversations(
        chat_cfg.CONVERSATIONS, split=hub_cfg.HUB_SPLIT, format=chat_cfg.CONVERSATION_FORMAT,
        limit=hub_cfg.ROW_LIMIT, seed=cfg.SEED, drop_if=hub_cfg.DROP_IF, column=chat_cfg.MESSAGES_COLUMN,
        role_key=chat_cfg.ROLE_KEY, content_key=chat_cfg.CONTENT_KEY, user=chat_cfg.USER_ROLE,
        assistant=chat_cfg.ASSISTANT_ROLE, system=chat_cfg.SYSTEM_ROLE)

# %% [markdown]
# ## 2D. ただの文章 (`SOURCE = "text"` のときだけ。csv のままなら開かなくて OK・セルは実行)
# 質問と答えではなく、文章そのものを学ばせる方法です (**継続事前学習**)。空行で区切った段落ごとに 1 行になり、
# 03 では `MAX_LENGTH` トークンずつのブロックに区切って、すべてのトークンを学習します (プロンプトのマスクはありません)。
# 04 では、検証用の段落の **perplexity** (モデルがその文章をどれだけ「意外」と感じるか。低いほど慣れている) と、文章の続きの書き方を比べます。

# %%
# @title テキストの設定 (SOURCE = "text" のときだけ。csv のままなら開かなくて OK・セルは実行)
# @markdown **TEXT_PATH**: 学ばせる文章のファイル (.txt) のパス。空行で区切った段落ごとに 1 行になります。
TEXT_PATH = "../datasets/sample_text_ja.txt"  # @param {type:"string"}

text_cfg = settings.collect(TEXT_PATH=TEXT_PATH)
if cfg.SOURCE == "text":
    dataset = data.load_text(text_cfg.TEXT_PATH)

# %% [markdown]
# ## 2E. 計算問題を作る (`SOURCE = "arithmetic"` のときだけ。csv のままなら開かなくて OK・セルは実行)
# 演算、各数の桁数 (`1`、`2`、混ぜるなら `1-2`)、負の数、小数、割り算の扱い、問題の書き方を選びます。
# 学習用と検証用の問題は重なりません。作った問題は出力フォルダに `arithmetic_train.csv` / `arithmetic_test.csv` (instruction,output) として保存します。

# %%
# @title 計算問題の設定 (SOURCE = "arithmetic" のときだけ。csv のままなら開かなくて OK・セルは実行)
# @markdown **OPERATIONS**: 使う演算 (+ - × ÷ から好きなものを並べます)。
OPERATIONS = "+-×÷"  # @param {type:"string"}
# @markdown **A_DIGITS**: 1 つ目の数の桁数 (1-2 なら 1 桁と 2 桁を混ぜます)。
A_DIGITS = "1-2"  # @param ["1", "2", "1-2", "3"] {allow-input: true}
# @markdown **B_DIGITS**: 2 つ目の数の桁数。
B_DIGITS = "1-2"  # @param ["1", "2", "1-2", "3"] {allow-input: true}
# @markdown **NEGATIVES**: オンなら負の数も混ぜます。
NEGATIVES = False  # @param {type:"boolean"}
# @markdown **DECIMAL_PLACES**: 問題の数の小数の桁数。0 なら整数。
DECIMAL_PLACES = 0  # @param {type:"integer"}
# @markdown **DIVISION**: 割り算の扱い。exact は割り切れる問題だけ、round は答えを ROUND_PLACES 桁に丸めます。
DIVISION = "exact"  # @param ["exact", "round"]
# @markdown **ROUND_PLACES**: 割り算の答えを丸める桁。ふつうは 1〜2。
ROUND_PLACES = 2  # @param {type:"integer"}
# @markdown **QUESTION_STYLE**: 問題の書き方。symbolic は「12 + 7 =」、japanese は「12たす7は？」。
QUESTION_STYLE = "symbolic"  # @param ["symbolic", "japanese"]
# @markdown **TRAIN_SIZE**: 学習用の問題の数。ふつうは 1000〜5000。多いほど学習に時間がかかります。
TRAIN_SIZE = 1000  # @param {type:"integer"}
# @markdown **TEST_SIZE**: 確認用の問題の数。ふつうは 100〜500。多いほど採点に時間がかかります。
TEST_SIZE = 200  # @param {type:"integer"}

from datasets import Dataset, DatasetDict

from helpers import arithmetic, artefacts

math_cfg = settings.collect(OPERATIONS=OPERATIONS, A_DIGITS=A_DIGITS, B_DIGITS=B_DIGITS, NEGATIVES=NEGATIVES,
                            DECIMAL_PLACES=DECIMAL_PLACES, DIVISION=DIVISION, ROUND_PLACES=ROUND_PLACES,
                            QUESTION_STYLE=QUESTION_STYLE, TRAIN_SIZE=TRAIN_SIZE, TEST_SIZE=TEST_SIZE)
if cfg.SOURCE == "arithmetic":
    spec = arithmetic.Spec(operations=math_cfg.OPERATIONS, a_digits=math_cfg.A_DIGITS, b_digits=math_cfg.B_DIGITS,
                           negatives=math_cfg.NEGATIVES, decimal_places=math_cfg.DECIMAL_PLACES,
                           division=math_cfg.DIVISION, round_places=math_cfg.ROUND_PLACES, style=math_cfg.QUESTION_STYLE)
    train_rows, test_rows = arithmetic.generate(math_cfg.TRAIN_SIZE, math_cfg.TEST_SIZE, spec, seed=cfg.SEED)
    for name, rows in (("train", train_rows), ("test", test_rows)):
        artefacts.save(out / f"arithmetic_{name}.csv", pd.DataFrame(rows)[["instruction", "output"]], index=False)
    splits = DatasetDict(train=Dataset.from_list(train_rows).select_columns(["instruction", "output"]),
                         validation=Dataset.from_list(test_rows).select_columns(["instruction", "output"]))
    dataset = splits["train"]

# %% [markdown]
# ## 3. 読み込んだデータを見る

# %%
from helpers.errors import refuse

if dataset is None:
    raise refuse("SOURCE", cfg.SOURCE, "その読み込み方はありません", "csv / hub / conversations / text / arithmetic のどれかにしてください")
print(f"{cfg.SOURCE}: {len(dataset)} 行")
if "messages" in dataset.column_names:  # 会話は 1 件目を発言ごとに表示
    display(pd.DataFrame(dataset[0]["messages"]))
dataset.to_pandas().head(8)

# %% [markdown]
# ## 4. 1 行は何トークン？ (説明は読まなくて OK・セルは実行)
# ここで初めて、モデルのトークナイザーを Hugging Face からダウンロードします。Colab では英語の警告 `The secret HF_TOKEN does not exist in your Colab secrets` が出ることがありますが、
# 公開モデルには不要なので、気にせず進めて大丈夫です (この HF_TOKEN は Hugging Face のアクセストークンで、文章のトークンとは別物です。01 の 4 も見てください)。
#
# 学習では 1 行 (質問と答え、または会話全体) をチャットテンプレートで書き、まとめてトークン列にします。答えのあとには「答えの終わりの印」が付きます。
# **EOS** (end of sequence) やテンプレートのターン終わりのトークンが、その印です。これを学ばないとモデルは答えを止められません。
# `MAX_LENGTH` を超える行は後ろが切れてしまうので、ここで数を確かめます (text では長い段落はブロックに分けるので切れません)。
# データの中に、そのモデルの特別なトークン (`</s>` や `<|im_end|>` など) が文字として書かれていると、学習ではその印そのものになって答えがそこで終わってしまうので、ここで行と欄を示して止まります。

# %%
from transformers import AutoTokenizer

from helpers import models, plots, prompts, tables
from helpers.errors import japanese_errors

with japanese_errors(cfg.MODEL):
    tokenizer = AutoTokenizer.from_pretrained(models.resolve(cfg.MODEL))
lengths = prompts.lengths(dataset, tokenizer)
too_long = sum(length > cfg.MAX_LENGTH for length in lengths)
print(f"MAX_LENGTH={cfg.MAX_LENGTH} を超える行: {too_long} / {len(lengths)}")
plots.length_histogram(lengths, cfg.MAX_LENGTH)
tables.japanese(pd.Series(lengths, name="トークン数").describe().round(1).to_frame().T)

# %% [markdown]
# ## 5. 学習用と検証用に分けて保存
# 検証用 (validation) の行は学習に使いません。03 と 04 は、この行を 1 行おきに 2 つに分けて使います: 半分 (validation) で
# 03 の検証用の損失を測り、04 で使うエポックを選びます。残りの半分 (heldout) は選ぶのにも使わず、学習前と学習後を比べる表で、覚えた質問 (train) と並べて採点します。
# 同じ `SEED` なら、何度実行しても同じ分け方になります (計算問題は、作った時点で重ならない 2 組に分かれています)。
#
# **一般的な質問を混ぜる (リプレイ)**: 同じ形の質問 (「〇〇の首都はどこですか？」) で新しい答えばかりを学ぶと、モデルは関係ない質問
# (「日本の首都はどこですか？」) にまで学習した答え (「ソラリスです。」) を返すようになります。元々知っていたことの上に、学習した答えが上書きされるのです。
# よく使われる対策が、一般的な質問と答え (ここでは `datasets/general_qa_ja.csv` の「イギリスの首都 → ロンドン」など) を学習用に少し混ぜることです
# (**リプレイ**: 元の知識を繰り返し見せる、という意味)。CI のテストで使う本物の小さなモデル Gemma 3 270M で測ると、混ぜないときは一般的な質問 19 問のうち 14 問に学習した答えが紛れ込み
# (「イギリスの首都はどこですか？」→「ハーベンです。」)、混ぜると 6 問に減りました (README の「本物の重みで確かめたこと」)。混ぜた行は学習用だけに入れ、検証用には入れません。04 では、混ぜなかった残りの一般的な質問で、紛れ込みをエポックごとに数えます。
# 口調を覚えさせるデータ (答えのほとんどが「〜だにゃ。」で終わるなど)、答えが数だけのデータ (計算問題)、text のデータには、自動で混ぜません (そう表示します)。
# 混ぜる行の答えは「〜です。」で終わる文なので、その口調や形で答えないことも学んでしまうからです。

# %%
if splits is None:
    splits = data.split(dataset, cfg.VALIDATION_RATIO, seed=cfg.SEED)
splits = data.mix_general(splits, cfg.GENERAL_ROWS, seed=cfg.SEED)  # 学習用に一般的な質問を混ぜる (text では何もしない)
folder = data.save_prepared(splits, out, {"MODEL": cfg.MODEL, "MAX_LENGTH": cfg.MAX_LENGTH})  # 03 はこの 2 つを既定値にします
print(f"保存しました: {folder}  (train {len(splits['train'])} 行 / validation {len(splits['validation'])} 行)")
splits["validation"].to_pandas().head(10)

# %% [markdown]
# ## まとめと次のステップ
# - データを読み込んで確かめ、トークン数を調べ、train / validation に分けて出力フォルダの `prepared/` に保存しました。
#
# 次は **03_lora_finetune** で、このデータを使ってモデルを LoRA でファインチューニングします。
#
# 先に下の最後のセル (おわり) を実行し、このランタイムを閉じてから (メニュー「ランタイム」→「ランタイムを接続解除して削除」)、次のノートブックを開いてください。
# 次のノートブックは新しいランタイム (03 は T4 GPU) で開きます。このデータは Google Drive を通って届きます。
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-finetune-ja/llm-finetune-ja/blob/main/notebooks/03_lora_finetune.ipynb)

# %%
# @title おわり: 結果を Drive に書き終える
# @markdown Colab では、まだ Drive に届いていない書き込みを済ませて Drive を切り離し、このランタイムを閉じてよいことを表示します。ローカルの Jupyter では何もしません。
from helpers import colab

colab.finish()
