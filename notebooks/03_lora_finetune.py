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
# # 03. LoRA でファインチューニングする
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-finetune-ja/llm-finetune-ja/blob/main/notebooks/03_lora_finetune.ipynb)
#
# **このノートブックでやること**
# 1. **LoRA** (Low-Rank Adaptation: 元の重みは固定し、小さな追加の行列だけを学習する方法) で、02 のデータを学習する
# 2. 学習用と検証用の **損失** (loss: 答えをどれだけ外したか。小さいほど良い) をグラフで見る
# 3. 学習の結果 (**アダプター**: LoRA で足した小さな重み、数 MB〜数十 MB) を出力フォルダに保存する
#
# **かかる時間**: Colab の T4 で 3 分ほどと見積もっています (T4 では測っていません。既定のモデル llm-jp-3.1-1.8b、サンプルの 40 行のうち学習用 32 行と 02 で混ぜた一般的な質問 16 行、自動で 7 エポック = 重みの更新 84 回)。実際の時間は、学習の最初の数回の更新から見積もって表示します。練習用モデルなら CPU で数分。
#
# **最短コース**: 既定のまま、上から順にセルを実行するだけで進めます。見出しに「説明は読まなくて OK・セルは実行」とある節は、説明はあとで読めば大丈夫です。ただしセルは飛ばさずに実行してください (あとのセルが、そこで作ったものを使います)。
#
# 先に **02_build_dataset** を実行しておいてください (Colab では Drive をオンにして。02 のデータが Drive を通ってここに届きます)。02 の出力がなければ、02 の既定のサンプルデータ (架空の事実 40 行) を用意して進みます。

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
# ## 1. 学習の設定
# **最初は既定のまま実行してください。** 学習は、データを何周もしながら、答えを当てられるようにモデルの重みを少しずつ直していく作業です。
# - **EPOCHS** (エポック数): データを何周するか。0 (既定) なら、データの行数から自動で決めます。
# - **LEARNING_RATE** (学習率): 1 回の更新で重みをどれだけ動かすか。
#
# 答えを覚えきれていなければ、あとでこのどちらかを少し上げて、もう一度実行します。

# %%
# @title 学習の設定 (基本)
# @markdown **MODEL**: 学習するモデル。「02 と同じ」(既定) なら 02 で決めたもの。ここで選ぶと、そちらが優先されます (MAX_LENGTH も同じで、下の詳細設定にあります)。
MODEL = "02 と同じ"  # @param ["02 と同じ", "llm-jp/llm-jp-3.1-1.8b-instruct4", "sbintuitions/sarashina2.2-1b-instruct-v0.1", "Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct", "tiny"] {allow-input: true}
# @markdown **EPOCHS**: データを何周学習するか。0 ならデータの行数から自動。ふつうは 2〜20。増やすとよく覚え、増やしすぎると丸暗記 (過学習) します。
EPOCHS = 0  # @param {type:"integer"}
# @markdown **LEARNING_RATE**: 1 回の更新で重みを動かす大きさ。LoRA では 0.0001〜0.0003 (1e-4〜3e-4) がふつう。大きいと速く覚えますが壊れやすく、小さすぎると覚えません。
LEARNING_RATE = 2e-4  # @param {type:"number"}

# %% [markdown]
# ### 詳細設定 (説明は読まなくて OK・セルは実行)
# 既定のままで学習できます。メモリが足りないと言われたときや、慣れてきたら触ります。下のセルは、学習の設定をまとめて 02 のデータを読み込むので、既定のままでも必ず実行してください。フォームの各項目の上に、何をするものか、ふつうの範囲、動かすとどうなるかを書いてあります。
# - `USE_4BIT`: 元の重みを 4 ビット (NF4) で読み込む QLoRA。層の重みが約 1/4 になり、大きなモデルも T4 に載ります (少し遅くなります)。
#   ただし埋め込みと出力層は fp32 になるので、語彙の大きい小さなモデル (既定の 1.8B など) ではあまり減りません。下の見積もりが、減る量の多い順に何を変えるかを表示します。
# - `GRADIENT_CHECKPOINTING`: 途中の計算結果を捨てて必要なときに計算し直し、メモリを節約します (2〜3 割遅くなります)。
# - `RESUME`: 同じ設定・同じデータのチェックポイント (学習の途中経過) があれば、そこから続けます。設定やデータを変えると新しい学習として最初から始め、前の学習のチェックポイントも消さずに残します。

# %%
# @title 詳細設定 (既定のままで OK・セルは実行)
# @markdown **BATCH_SIZE**: 1 度に計算する行数。T4 では 1〜8。大きいと速くなりますが、メモリを多く使います。
BATCH_SIZE = 4  # @param {type:"integer"}
# @markdown **GRAD_ACCUM**: 何バッチ分をまとめて 1 回の更新にするか。ふつうは 1〜8。メモリが足りずにバッチを小さくしたら、その分これを増やします。
GRAD_ACCUM = 1  # @param {type:"integer"}
# @markdown **LORA_R**: LoRA で足す行列の大きさ (ランク)。ふつうは 4〜64。大きいと多くを覚えられますが、メモリとファイルが増えます。
LORA_R = 8  # @param {type:"integer"}
# @markdown **LORA_ALPHA**: LoRA の効き具合。ふつうは r の 1〜2 倍。大きいと学習の効きが強くなります。
LORA_ALPHA = 16  # @param {type:"integer"}
# @markdown **LORA_DROPOUT**: 学習中に一部を無視して丸暗記を防ぐ割合。ふつうは 0〜0.1。大きいと丸暗記しにくく、覚えるのは遅くなります。
LORA_DROPOUT = 0.05  # @param {type:"slider", min:0, max:0.5, step:0.05}
# @markdown **MAX_LENGTH**: 1 行のトークン数の上限 (「02 と同じ」なら 02 で決めた値)。ふつうは 128〜1024。大きいと長い行も切れずに学習できますが、メモリと時間が増えます。
MAX_LENGTH = "02 と同じ"  # @param ["02 と同じ", "128", "256", "512", "1024"] {allow-input: true}
# @markdown **USE_4BIT**: オンなら元の重みを 4 ビットで読み込みます (QLoRA)。メモリが減り、少し遅くなります。既定はオフ。
USE_4BIT = False  # @param {type:"boolean"}
# @markdown **GRADIENT_CHECKPOINTING**: オンなら途中の計算結果を捨てて計算し直し、メモリを節約します (2〜3 割遅くなります)。既定はオフ。
GRADIENT_CHECKPOINTING = False  # @param {type:"boolean"}
# @markdown **RESUME**: オン (既定) なら、同じ設定・同じデータのチェックポイントがあれば、そこから続けます。オフなら最初から学習します。
RESUME = True  # @param {type:"boolean"}
# @markdown **SEED**: 乱数の種 (分け方や初期値が決まります)。どの値でも、同じ値なら同じ結果。
SEED = 42  # @param {type:"integer"}

import pandas as pd

from helpers import artefacts, checkpoints, data, env, models, schedule, settings

cfg = settings.collect(MODEL=MODEL, EPOCHS=EPOCHS, LEARNING_RATE=LEARNING_RATE, BATCH_SIZE=BATCH_SIZE,
                       GRAD_ACCUM=GRAD_ACCUM, LORA_R=LORA_R, LORA_ALPHA=LORA_ALPHA, LORA_DROPOUT=LORA_DROPOUT,
                       MAX_LENGTH=MAX_LENGTH, USE_4BIT=USE_4BIT, GRADIENT_CHECKPOINTING=GRADIENT_CHECKPOINTING,
                       RESUME=RESUME, SEED=SEED)
out = env.output_dir()
env.check_drive(out, "学習")  # Colab: 結果が Drive に残らないなら、学習の前に止まる
splits = data.load_prepared(out, prepare_default=True)  # 02 の出力がなければ、02 の既定のサンプルデータで
cfg = settings.inherit(cfg, data.recorded_settings(out), "02", data.DEFAULT_SETTINGS)  # 「02 と同じ」を 02 で決めた値に
precision = env.choose_precision(cfg.MODEL)  # Colab で GPU がなければ、ここで止まって T4 の選び方を表示
print(precision.reason)

# %% [markdown]
# ## 2. メモリは足りる？ (説明は読まなくて OK・セルは実行)
# ここで初めてモデルの設定ファイルを Hugging Face から読むので、Colab では英語の警告 `The secret HF_TOKEN does not exist in your Colab secrets` が出ることがあります。
# 公開モデルには不要なので、気にせず進めて大丈夫です (01 の 4 と同じです)。
#
# モデルの設定ファイル (config) だけから、学習に必要な GPU メモリを見積もります:
# 重み + LoRA アダプター + その勾配 + オプティマイザーの状態 + 活性化 (途中の計算結果) + 出力 (logits)。
# 足りないときは、何を変えればよいかを順に表示します。見積もりなので ±2 割ほどずれます。

# %%
import torch
from transformers import AutoConfig

from helpers import memory
from helpers.errors import japanese_errors

model_path = models.resolve(cfg.MODEL)
with japanese_errors(cfg.MODEL):
    model_config = AutoConfig.from_pretrained(model_path)
model_shape = memory.shape(model_config)
plan = dict(lora_r=cfg.LORA_R, lora_dropout=cfg.LORA_DROPOUT, batch_size=cfg.BATCH_SIZE, max_length=cfg.MAX_LENGTH,
            four_bit=cfg.USE_4BIT, weight_bytes=torch.finfo(precision.dtype).bits // 8,
            gradient_checkpointing=cfg.GRADIENT_CHECKPOINTING, device=precision.device,
            eight_bit_optimizer=cfg.USE_4BIT and precision.device == "cuda")
needed = memory.estimate(model_shape, **plan)
free = torch.cuda.mem_get_info()[0] if torch.cuda.is_available() else None
print(memory.advice(model_shape, free, **plan))  # 足りないときは、減る量の多い順に何を変えるか
memory.table(needed).T

# %% [markdown]
# ## 3. モデルとトークナイザーを読み込む
# 01 と同じ読み込み方です。初めてのときは重みを Hugging Face からダウンロードします (既定のモデルで約 3.8 GB)。英語の警告 `The secret HF_TOKEN ...` は、2 と同じく気にしなくて大丈夫です。
# (ここから説明は読まなくて OK) `USE_4BIT` のときは `BitsAndBytesConfig` で 4 ビット (NF4, double quantization) にし、
# 計算は 1 で決めた精度 (T4 なら fp16) で行います。`prepare_model_for_kbit_training` は 4 ビットのモデルを学習できる状態に整えます。
#
# **fp16 で計算があふれないか**: fp16 が表せる数は 65504 までです。モデルによっては (Gemma 2/3 など) 途中の値がそれを超え、
# 計算結果がすべて NaN (数でない値) になります。確かめないと、エラーも出ないまま、まともな答えも出ず、学習しても何も身につかずに終わります。そこで fp16 のときは、学習データの 1 行目で 1 回だけ計算して確かめ、
# あふれたら理由を表示して fp32 で読み込み直します (メモリが足りないときは、直し方を表示して止まります)。モデルの名前ではなく、実際の計算で判断します。

# %%
from peft import prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=precision.dtype) if cfg.USE_4BIT else None
with japanese_errors(cfg.MODEL):
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(
        model_path, dtype=precision.dtype, attn_implementation="sdpa", quantization_config=quantization,
        device_map=env.device_map(precision.device))
    # fp16 なら学習データの 1 行目で確かめ、あふれたら fp32 で読み込み直す (fp32 のメモリは 2 の見積もりの 2 倍以内)
    model, precision = models.fp16_checked(model, cfg.MODEL, precision, tokenizer=tokenizer, row=splits["train"][0],
                                           needed_bytes=2 * sum(needed.values()), four_bit=cfg.USE_4BIT,
                                           device_map=env.device_map(precision.device))
if cfg.USE_4BIT:
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.GRADIENT_CHECKPOINTING,
                                            gradient_checkpointing_kwargs={"use_reentrant": False})  # transformers の既定と同じ (指定しないと PyTorch が英語で警告)
print(f"読み込んだモデルのメモリ: {model.get_memory_footprint() / 2**20:,.0f} MiB")

# %% [markdown]
# ## 4. 学習データをトークンにする: 答えだけを学習する (ラベルのマスク。しくみの説明は最初は読まなくて OK・セルは実行)
# モデルは「次のトークン」を当てるように学習します。**ラベル** (各位置で当てるべきトークン) のうち、質問やテンプレートの部分を
# `-100` (損失を計算しない印) にして、**答えと、答えの終わりの印** だけを学ばせます。こうすると、モデルは質問を真似するのではなく答え方を学び、答え終わったら止まるようになります。
#
# 大事なのは、学習で見せるトークンを、推論 (`generate`) のときにモデルが見るトークンと **まったく同じ** にすることです。
# 学習用データの 1 行目で、手順を 1 つずつ見てみます (02 で text を選んだときは、マスクせずにすべてを学習するので、この手順はありません)。
# 1. 会話全体 (質問と答え) をチャットテンプレートで 1 つの文字列にし、**まとめて** トークンにする
# 2. 答えごとに: 答えの直前まで (+「ここから答え」の書式) を、推論のときと同じようにトークンにする。これが 1 の先頭と一致することを確かめる
# 3. その答えの終わり = 2 のあと、最初に出てくる **終了の印** (EOS か、テンプレートがターンの終わりに書くトークン)
# 4. ラベル: 2 と 3 の間 (答え + 終了の印) だけトークンそのもの、ほかはすべて `-100`
#
# 会話のデータでは、assistant の発言 (答え) が複数あるので、2〜4 を答えごとに繰り返します。

# %%
from IPython.display import display

from helpers.prompts import IGNORE_INDEX, encode, format_chat, row_messages, stop_ids, training_example

if not data.is_text(splits):
    messages = row_messages(splits["train"][0])  # 1 行目を会話 (role と content の並び) にする
    example = training_example(tokenizer, messages)  # helpers で作った結果 (あとで比べます)
    full_ids = encode(tokenizer, format_chat(tokenizer, messages, add_generation_prompt=False))  # 手順 1
    stops = stop_ids(tokenizer)
    labels = [IGNORE_INDEX] * len(full_ids)
    for turn in [i for i, m in enumerate(messages) if m["role"] == "assistant"]:
        prompt_ids = encode(tokenizer, format_chat(tokenizer, messages[:turn], add_generation_prompt=True))  # 手順 2
        print(f"{turn + 1} 番目の発言の前まで: 手順 1 の先頭と一致する = {full_ids[:len(prompt_ids)] == prompt_ids}")
        end = next(i for i in range(len(prompt_ids), len(full_ids)) if full_ids[i] in stops)  # 手順 3
        labels[len(prompt_ids):end + 1] = full_ids[len(prompt_ids):end + 1]  # 手順 4
    print("終了の印:", tokenizer.convert_ids_to_tokens(stops))
    print("helpers.prompts.training_example の結果と同じ:", labels == example["labels"])
    print(format_chat(tokenizer, messages, add_generation_prompt=False))
    display(pd.DataFrame({"トークン": tokenizer.convert_ids_to_tokens(full_ids), "ID": full_ids, "ラベル": labels,
                          "学習する？": ["-" if label == IGNORE_INDEX else "◯" for label in labels]}).T)

# %% [markdown]
# **落とし穴 (説明は読まなくて OK・セルは実行): 答えだけを別にトークンにしない。** 同じ文字列でも、前に何があるかでトークンが変わることがあります。
# たとえば SentencePiece のトークナイザー (llm-jp-3 など) は、文字列の先頭に空白の印 `▁` を付けるので、答えを単独でトークンにすると `▁東京` に、
# `### 応答:` の改行のあとに続けると `東京` になります。答えを別にトークンにして質問につなげると、推論では出てこないトークンを学習してしまいます。
# 上の手順のように会話をまとめてトークンにすれば、この食い違いは起きません。このモデルで、最後の答えを比べると:

# %%
if not data.is_text(splits):
    alone = tokenizer(messages[-1]["content"], add_special_tokens=False).input_ids
    in_context = full_ids[end - len(alone):end]  # 会話の中で、終了の印の直前の同じ長さ
    print("答えを単独でトークンにすると:", tokenizer.convert_ids_to_tokens(alone))
    print("会話の中のトークン          :", tokenizer.convert_ids_to_tokens(in_context))
    print("同じです (このモデルでは、この落とし穴は起きません)。" if alone == in_context else
          "違います。これが上の落とし穴です。このノートブックは会話全体をまとめてトークンにしているので、学習には影響しません (直すことはありません)。")

# %% [markdown]
# すべての行を、答えの部分だけを学習する形のトークンに変えます (`helpers.prompts.tokenize`。上の手順 `training_example` を各行に行います)。
# `MAX_LENGTH` を超える行は後ろが切れるので、その数も表示します。02 で text を選んだときは、文章をつなげて `MAX_LENGTH` トークンずつのブロックに区切り、すべてのトークンを学習します。

# %%
from helpers.prompts import tokenize

train_data = tokenize(splits["train"], tokenizer, cfg.MAX_LENGTH)
validation_data = tokenize(splits["validation"], tokenizer, cfg.MAX_LENGTH)
print(f"学習用 {len(train_data)} 行 / 検証用 {len(validation_data)} 行")
if cfg.EPOCHS == 0:  # 自動: 少ないデータは何周も、多いデータは 2 周
    cfg.EPOCHS = schedule.auto_epochs(len(train_data))
    print(f"EPOCHS = 0 (自動): 学習用が {len(train_data)} 行なので {cfg.EPOCHS} エポックにします"
          f" (行数 × エポック数が {schedule.ROWS_SEEN} ほどになるように、{schedule.MIN_EPOCHS}〜{schedule.MAX_EPOCHS})。")

# %% [markdown]
# ## 5. LoRA の設定
# **LoRA** は、元のモデルの重みは変えずに、小さな行列 (アダプター) を足してそれだけを学習します。学習するパラメータが全体の 1% 未満 (既定の 1.8B のモデルと r = 8 で約 0.5%。下のセルが実際の割合を表示します) なので、無料の T4 でも学習できます。
# (ここから説明は読まなくて OK) `target_modules="all-linear"` で、注意機構と MLP のすべての線形層に LoRA を付けます。
# 学習するパラメータが全体の何 % かを表示します。GPU の fp16 学習でも、LoRA のパラメータは fp32 のまま保たれます (PEFT の既定)。
# こうしないと fp16 の学習が「Attempting to unscale FP16 gradients」というエラーで止まります。
# LoRA の行列は乱数で初期化されるので、先に `set_seed` で乱数の種を固定します (同じ設定なら毎回同じ結果になります)。

# %%
from peft import LoraConfig, get_peft_model
from transformers import set_seed

set_seed(cfg.SEED)
lora_config = LoraConfig(r=cfg.LORA_R, lora_alpha=cfg.LORA_ALPHA, lora_dropout=cfg.LORA_DROPOUT,
                         target_modules="all-linear", task_type="CAUSAL_LM")
model = get_peft_model(model, lora_config)
trainable, total = model.get_nb_trainable_parameters()
print(f"学習するパラメータ: {trainable:,} / 全体 {total:,} ({trainable / total:.2%})"
      + (" ※練習用の tiny はとても小さいので割合が大きく出ます" if cfg.MODEL == models.TINY else ""))
steps = schedule.optimizer_steps(len(train_data), cfg.BATCH_SIZE, cfg.GRAD_ACCUM, cfg.EPOCHS)
schedule.warn_few_steps(steps, precision.fp16)
print(f"重みの更新回数: {steps} 回")

# %% [markdown]
# ## 6. 学習する
# 学習します。学習が始まると、最初の数回の更新から終わるまでの時間を見積もって表示します。途中で Colab が切れても、このノートブックを上から実行し直せば続きから再開します。
# 以下は細かい説明です (読まなくて OK)。`TrainingArguments` に設定をまとめ、`Trainer` が学習を進めます。
# - 1 エポックごとに検証用データの損失を測り、チェックポイントを出力フォルダ (Colab では Drive) の `checkpoints/<実行の名前>/` に書きます。
#   チェックポイントには再開に要るもの (アダプター、optimizer の状態など) が全部入るので大きく (1.8B のモデルで 100 MB ほど)、学習が終わったときに残すのは最新のものだけです
#   (と、検証用の損失がいちばん低いエポックのもの。学習中は、Drive に届く前に切れたときのために 1 つ前のものも残します)。古いものは中身を空にしてから消します。
#   Drive で消したファイルはゴミ箱に入り、ゴミ箱を空にするまで容量を使うからです。
#   学習の前に、Drive に残る量と書き込む量を表示します。
#   実行の名前は、設定と 02 のデータから決まる短いハッシュです。接続が切れたら、このノートブックを上から実行し直すと、同じ名前の最後のチェックポイントから再開します。
#   設定を変えると別の名前になり、前の学習のフォルダは消さずに残します (要らなければ、表示されるフォルダを自分で削除します)。
# - `load_best_model_at_end`: 学習の最後に、検証用の損失がいちばん低いエポックの重みに戻します。これが 8 で保存する `adapter/` です。
#   損失だけで見た最初の候補で、どのエポックを使うかは 04 で答えを採点して決めます。
# - `DataCollatorWithFlattening` (詰め物なしのパッキング): バッチの行を **1 本の長い行につなげて** 学習します。長さをそろえる詰め物 (padding) がいらないので、
#   そのぶんメモリが少なくて済み、少し速くなります (`make bench` で、バッチの中のいちばん長い行まで詰め物をする Hugging Face の既定のやり方と比べています)。
#   位置の番号 (position_ids) を行ごとに 0 から振り直すので、つないだ行どうしは注意 (attention) で互いを参照しません。ただしそれが効くのは、学習中にモデルが
#   キャッシュ (生成を速くするための過去の計算結果) を使わないときだけなので、`model.config.use_cache = False` にします (生成のときは `generate` がキャッシュを使います)。
#   損失はつなぐ前と同じになることを、テスト (`tests/test_packing.py`) で確かめています。
#   text のデータでは、どのブロックも同じ長さ (`MAX_LENGTH`) で詰め物がないので、つながずに `DataCollatorForSeq2Seq` でそのまま並べます (つなぐと注意の計算が増えるだけです)。
# - `optim`: 4 ビットで GPU のときは、メモリの少ない paged 8-bit AdamW を使います。
# - 各エポックのアダプター (LoRA の重みだけ) を、半分の大きさの fp16 で `checkpoints/<実行の名前>/epochs/` に残します。04 はエポックごとに検証用の質問に答えさせ、その答えで使うエポックを選びます。
# - `overflow.guard()`: 損失や LoRA の重みが inf や NaN (数があふれた印) になったり、fp16 で更新が飛ばされ続けたりしたら、その場で理由を日本語で表示して学習を止めます
#   (fp16 では、最初の数回の更新が飛ばされるのは正常です。止めるのは、何度も続いて loss scale (あふれを防ぐために損失にかける倍率) が 1 未満になったときです)。
#   そのエポックはチェックポイントにもアダプターにも残さないので、壊れた重みが選ばれることはありません。


# %%
from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening, Trainer, TrainingArguments

from helpers import overflow
from helpers.prompts import IGNORE_INDEX

model.config.use_cache = False  # 学習中はキャッシュを使わない (つないだ行を見分けるのに必要)
run = artefacts.start_run(out, vars(cfg), resume=cfg.RESUME)  # 設定とデータから決まる実行の名前と、そのフォルダ
print(f"この学習の名前: {run.id} (チェックポイント: {run.folder})")
collator = (DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX) if data.is_text(splits) else
            DataCollatorWithFlattening(separator_id=IGNORE_INDEX))  # 行をつないで 1 本に (詰め物なし)
args = TrainingArguments(
    output_dir=str(run.folder),
    num_train_epochs=cfg.EPOCHS,
    learning_rate=cfg.LEARNING_RATE,
    per_device_train_batch_size=cfg.BATCH_SIZE,
    per_device_eval_batch_size=cfg.BATCH_SIZE,
    gradient_accumulation_steps=cfg.GRAD_ACCUM,
    lr_scheduler_type="cosine",
    logging_strategy="epoch",
    eval_strategy="epoch",
    save_strategy="epoch",  # 古いチェックポイントは、下の checkpoints.save_callback() が消します
    load_best_model_at_end=True,
    metric_for_best_model="eval_loss",
    gradient_checkpointing=cfg.GRADIENT_CHECKPOINTING,  # transformers 5.16 からの新しい名前は activation_checkpointing (Colab の 5.15 では使えないので古い名前)
    optim="paged_adamw_8bit" if cfg.USE_4BIT and precision.device == "cuda" else "adamw_torch",
    fp16=precision.fp16,
    bf16=precision.bf16,
    use_cpu=precision.device == "cpu",
    include_num_input_tokens_seen="non_padding",
    logging_nan_inf_filter=False,  # 既定 (True) は NaN の損失を記録から除くので、壊れた学習が正常に見えてしまう
    seed=cfg.SEED,
    report_to="none",
)
print(checkpoints.footprint_note(trainable, tokenizer, args))
checkpoint = checkpoints.resume_point(run.folder, resume=cfg.RESUME)
if checkpoint:
    print(f"{checkpoint} から再開します。")
env.prepare_cpu()
tokens_before = checkpoints.tokens_seen(checkpoint)  # 再開したときは、再開してからの時間とトークン数で速さを出す
with japanese_errors("学習"):  # メモリ不足、ディスクの空き不足、書き込めない出力フォルダなどを、日本語の説明に
    trainer = Trainer(model=model, args=args, train_dataset=train_data, eval_dataset=validation_data,
                      processing_class=tokenizer, data_collator=collator,
                      callbacks=[overflow.guard(), checkpoints.save_callback(),
                                 schedule.time_callback()])
    result = trainer.train(resume_from_checkpoint=checkpoint)
runtime = result.metrics["train_runtime"]  # この実行の分だけ
tokens = trainer.state.num_input_tokens_seen - tokens_before
print(f"学習時間: {runtime:.0f} 秒 / 速さ: {tokens / runtime:,.0f} トークン/秒 (詰め物を除く)"
      f" / メモリの最大: {memory.measured_peak_mb():,.0f} MiB")

# %% [markdown]
# ## 7. 損失 (loss) のグラフと、検証用の損失がいちばん低いエポック
# train の損失は学習データへの当てはまり、validation の損失は見ていないデータへの当てはまりです。
# train だけ下がって validation が上がり始めたら **過学習** (丸暗記して応用が利かない状態) のサインです。
#
# 03 はエポックごとのアダプターをすべて残し、検証用の損失がいちばん低いエポックのものを `adapter/` として保存します。これは損失だけで見た最初の候補です。
# 損失が低くても、答えが正しいとは限りません。04 では、エポックごとのアダプターで検証用の質問に答えさせ、その答え
# (と、関係ない一般的な質問にいくつ学習した答えが紛れ込んだか) で使うエポックを決めます。
# 02 で分けた検証用の行は、1 行おきに 2 つに分けて使います: **validation** (選ぶ用: ここでの損失と 04 のエポック選び) と
# **heldout** (確かめ用: 04 の学習前と学習後の表)。エポックを選ぶのに使った質問で成績を報告すると、数字が良く出すぎるからです。

# %%
from helpers import plots

history = plots.loss_history(trainer.state.log_history)
figure = plots.plot_loss(history)
artefacts.save(out / artefacts.LOSS_HISTORY, history)
artefacts.save(out / artefacts.LOSS_PLOT, figure)
best, best_loss = checkpoints.best_epoch(trainer.state.log_history)
print(f"検証用の損失がいちばん低いのは epoch {best:g} (validation loss {best_loss:.3f}) です。このエポックのアダプターを adapter/ に保存します"
      " (損失だけで見た候補。どのエポックを使うかは 04 で答えを採点して決めます)。")
history.tail()

# %% [markdown]
# ## 8. アダプターを保存して、少し試す
# 保存されるのは LoRA の追加部分だけなので小さなファイルです。04 で元のモデルと組み合わせて使います。
# `adapter/` に入るのは、7 の検証用の損失がいちばん低いエポックのアダプターです。ほかのエポックのアダプターも `checkpoints/<実行の名前>/epochs/` に残っているので、04 はそれぞれを採点して使うエポックを選びます。
# いったん別の名前のフォルダに書き、書き終わってから `adapter/` と入れ替えます。途中で止まっても、前の `adapter/` は壊れません。
# 中の `tutorial_run.json` には、どの学習 (設定とデータ) のアダプターかと損失の推移を書きます。04 と 05 はこれを見て、同じ学習の結果を使っているか確かめます。
# 最後に、学習が最後まで終わった設定を `train_settings.json` に保存します (失敗した学習の設定は書きません)。
#
# 保存したあと、学習用の質問を 3 つ答えさせてみます。英語の警告 `The following generation flags are not valid and may be ignored: ...` が出ることがあります。
# モデルの設定 (`generation_config.json`) にある、答えにばらつきを出すための値 (temperature など) が、毎回同じ答えを出す設定 (greedy) では使われない、という知らせです。答えには影響しないので、気にせず進めて大丈夫です。

# %%
from helpers import generation

with artefacts.writing(out / artefacts.ADAPTER) as folder:
    trainer.save_model(str(folder))
    artefacts.stamp(folder, run.id, data=run.data, settings=vars(cfg), started=run.started, best_epoch=best,
                    log_history=trainer.state.log_history)
artefacts.save(out / artefacts.SETTINGS, vars(cfg))  # `python -m helpers.train --config` でも同じ学習ができます
sample = splits["train"].select(range(min(3, len(splits["train"]))))
if data.is_text(splits):  # text: continue the opening of a training paragraph
    openings, expected = data.continuations(sample["text"])
    shown = pd.DataFrame({"書き出し": openings, "元の文章": expected,
                          "学習後の続き": generation.answer(model, tokenizer, openings, chat=False)})
else:  # the last answer of each row (conversations: given everything before it)
    prompts, expected, questions = data.last_turns(sample)
    shown = pd.DataFrame({"質問": questions, "正解": expected, "学習後の答え": generation.answer(model, tokenizer, prompts)})
shown

# %% [markdown]
# ## まとめと次のステップ
# - メモリを見積もり、プロンプトをマスクしたデータで LoRA (または QLoRA) を学習し、損失のグラフと、エポックごとのアダプターを出力フォルダに保存しました。
#   `adapter/` は検証用の損失がいちばん低いエポックのものです (損失だけで見た候補)。どのエポックを使うかは、04 で検証用の質問への答えを採点して決めます。
# - 設定を変えて学習し直すと、`checkpoints/` に学習ごとのフォルダが増えていきます。要らないものは削除してかまいません (`adapter/` は最後に最後まで終わった学習のものです)。
#   Drive で削除したものはゴミ箱に移るだけで、ゴミ箱を空にするまで Drive の容量を使います (drive.google.com の「ゴミ箱」→「ゴミ箱を空にする」)。
# - 答えが正しくないときは、まずエポック数を増やすか学習率を少し上げてみてください。
# - 同じ学習はコマンドでも実行できます: `python -m helpers.train --config 出力フォルダ/train_settings.json` (GPU が複数あれば `accelerate launch -m helpers.train --config …`)。
#
# 次は **04_compare_after_tuning** で、使うエポックを答えで選び、学習前と学習後の答えを並べて比べます。
#
# 先に下の最後のセル (おわり) を実行し、このランタイムを閉じてから (メニュー「ランタイム」→「ランタイムを接続解除して削除」。無料の GPU の利用時間を使わずに済みます)、次のノートブックを開いてください。
# 次のノートブックは新しいランタイム (T4 GPU) で開きます。学習の結果は Google Drive を通って届きます。
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-finetune-ja/llm-finetune-ja/blob/main/notebooks/04_compare_after_tuning.ipynb)

# %%
# @title おわり: 結果を Drive に書き終える
# @markdown Colab では、まだ Drive に届いていない書き込みを済ませて Drive を切り離し、このランタイムを閉じてよいことを表示します。ローカルの Jupyter では何もしません。
from helpers import colab

colab.finish()
