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
# 2. エポックごとのアダプターで **validation** (選ぶ用の質問) に答えさせて採点し、どのエポックを使うか決める (過学習する前の時点)
# 3. 同じ質問に「学習前」と「学習後」で答えさせ、表に並べる
#    - **train**: 学習に使った質問 (覚えたか)
#    - **heldout**: 学習にも、エポックを選ぶのにも使わなかった質問 (応用できたか)
#    - **control**: データに無い一般的な質問 (01 の質問)。学習した答えが紛れ込んでいないか、元の知識を忘れていないか
# 4. 完全一致、文字単位の F1、perplexity で採点する。口調 (答えの終わり方) が身についたかも測る。答えが数のデータ (計算問題など) では、数として読み取って誤差も測る
# 5. 結果を `comparison.csv` と、Jupyter なしで開ける `report.html` に保存し、採点したアダプターを 05 のために `evaluated_adapter/` に保存する。最後に自分で質問して試す
#
# **かかる時間**: T4 で 3〜5 分の見込みです (サンプルの 40 行、7 エポックそれぞれの採点を含み、区分ごとに最大 `EVAL_ROWS` 問。T4 では測っていない見込みです)。
# 答えさせている間は進み具合を棒で表示します。練習用モデルなら CPU で 1 分ほど。
#
# **最短コース**: 既定のまま、上から順にセルを実行するだけで、学習前と学習後の表まで進めます。見出しに「説明は読まなくて OK・セルは実行」とある節は、説明はあとで読めば大丈夫です (セルは実行してください。あとのセルが使います)。
# 英語の警告 `The following generation flags are not valid and may be ignored` が出ることがあります。モデルの既定の設定のうち、ここでの答え方 (greedy) では使わないものを知らせるだけなので、気にせず進めて大丈夫です。
#
# 先に **03** を実行しておいてください (Colab では Drive をオンにして。03 のアダプターが Drive を通ってここに届きます)。01 の答えがあれば、ここでの学習前の答えと一致するかも確かめます。

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
# ## 1. 設定と、前のノートブックの結果の読み込み
# 設定は既定のままで OK です (セルは実行してください。03 の結果を読み込みます)。
# (ここから説明は読まなくて OK) 比べるときは、毎回同じ答えになる設定 (greedy: いちばん確率の高いトークンを選ぶ) が基本です。
# `DO_SAMPLE` をオンにすると、`TEMPERATURE` (大きいほどばらつく) と `TOP_P` (確率の高い候補だけから選ぶ) で毎回違う答えになります。
# `REPETITION_PENALTY` (> 1 で同じ言葉の繰り返しを抑える) と `NUM_BEAMS` (複数の候補を並行して探す) も選べます。
# `CHECKPOINT` は使うアダプター: `recommended` (下の 3 で選ぶもの)、`adapter` (03 が検証用の損失だけで選んだもの)、またはエポックの番号。
# `EVAL_ROWS` は、学習に使った質問・使わなかった質問・エポックごとの採点のそれぞれで答えさせる最大の数です (多いほど正確で、時間がかかります。進み具合は棒で表示します)。
# 口調と、数の答えの設定は、それぞれ 6 と 7 のセルにあります。

# %%
# @title 詳細設定 (既定のままで OK・セルは実行)
# @markdown **MAX_NEW_TOKENS**: 答えの長さの上限 (トークン数)。ふつうは 32〜256。小さいと答えが途中で切れ、大きいと長い答えを待つ時間が増えます。
MAX_NEW_TOKENS = 64  # @param {type:"integer"}
# @markdown **DO_SAMPLE**: オンなら答えを確率で選び、毎回違う答えになります。比べるときはオフ (毎回同じ答え) が基本です。
DO_SAMPLE = False  # @param {type:"boolean"}
# @markdown **TEMPERATURE**: DO_SAMPLE がオンのときの答えのばらつき。ふつうは 0.3〜1.0。大きいほど意外な答えが増えます。
TEMPERATURE = 0.7  # @param {type:"slider", min:0.1, max:2, step:0.1}
# @markdown **TOP_P**: DO_SAMPLE がオンのとき、確率の高い候補だけから選ぶ範囲。ふつうは 0.8〜0.95。小さいほど無難な答えになります。
TOP_P = 0.9  # @param {type:"slider", min:0.1, max:1, step:0.05}
# @markdown **REPETITION_PENALTY**: 同じ言葉の繰り返しを抑える強さ。ふつうは 1.0〜1.3。1.0 なら抑えません。
REPETITION_PENALTY = 1.0  # @param {type:"slider", min:1, max:2, step:0.05}
# @markdown **NUM_BEAMS**: 並行して探す答えの候補の数 (ビームサーチ)。ふつうは 1〜4。大きいほど時間がかかります。
NUM_BEAMS = 1  # @param {type:"integer"}
# @markdown **CHECKPOINT**: 使うアダプター。recommended は下の 3 で採点して選ぶもの、adapter は 03 が検証用の損失だけで選んだもの。エポックの番号 (例: 3) も入力できます。
CHECKPOINT = "recommended"  # @param ["recommended", "adapter"] {allow-input: true}
# @markdown **EVAL_ROWS**: 区分ごとに答えさせる最大の問題数。ふつうは 20〜200。多いほど採点が確かになり、時間がかかります。
EVAL_ROWS = 50  # @param {type:"integer"}

import pandas as pd

from types import SimpleNamespace

from helpers import artefacts, checkpoints, data, env, settings

cfg = settings.collect(MAX_NEW_TOKENS=MAX_NEW_TOKENS, DO_SAMPLE=DO_SAMPLE, TEMPERATURE=TEMPERATURE, TOP_P=TOP_P,
                       REPETITION_PENALTY=REPETITION_PENALTY, NUM_BEAMS=NUM_BEAMS, CHECKPOINT=CHECKPOINT,
                       EVAL_ROWS=EVAL_ROWS)
generate_kwargs = dict(max_new_tokens=cfg.MAX_NEW_TOKENS, do_sample=cfg.DO_SAMPLE, num_beams=cfg.NUM_BEAMS,
                       repetition_penalty=cfg.REPETITION_PENALTY)
if cfg.DO_SAMPLE:
    generate_kwargs |= dict(temperature=cfg.TEMPERATURE, top_p=cfg.TOP_P)
out = env.output_dir()
adapter_dir = env.require(out / artefacts.ADAPTER, "03_lora_finetune.ipynb")
splits = data.load_prepared(out)
run = artefacts.trained_run(out)  # 03 のアダプターに書かれた学習の記録。02 のデータがそのあと変わっていたら、ここで止まる
trained = SimpleNamespace(**run["settings"])  # 03 のフォームの値
epochs = artefacts.epoch_adapters(out, run)  # この学習のエポックごとのアダプター
choice = checkpoints.choice(cfg.CHECKPOINT, epochs)
precision = env.choose_precision(trained.MODEL)
env.check_drive(out, "評価")
control_questions = data.load_csv("../datasets/baseline_questions.csv")  # 01 と同じ、一般的な知識の質問
print(f"モデル: {trained.MODEL} / 学習: {run['run']} (エポック数 {trained.EPOCHS}、学習率 {trained.LEARNING_RATE})")

# %% [markdown]
# ## 2. 元のモデル + アダプターを読み込む
# `PeftModel.from_pretrained` で、元のモデルに LoRA アダプターを重ねます。03 で 4 ビット (QLoRA) にしたときは、ここでも 4 ビットで読み込みます。
# `with model.disable_adapter():` の中ではアダプターが外れ、学習前と同じ答えになります。

# %%
from transformers import AutoTokenizer

from helpers import models
from helpers.errors import japanese_errors

with japanese_errors(trained.MODEL):
    tokenizer = AutoTokenizer.from_pretrained(models.resolve(trained.MODEL))
    # 03 と同じ読み込み方 (精度、SDPA、USE_4BIT なら 4 ビット) に、PeftModel.from_pretrained でアダプターを重ねる
    model = models.load(trained.MODEL, precision, four_bit=trained.USE_4BIT, adapter=adapter_dir)
print(f"メモリ: {model.get_memory_footprint() / 2**20:,.0f} MiB (アダプター込み)")

# %% [markdown]
# ## 3. どのエポックのアダプターを使う？ (説明は読まなくて OK・セルは実行)
# 学習に使わなかった質問 (02 の検証用) は、1 行おきに 2 つに分けてあります。**validation** (選ぶ用) でエポックを選び、**heldout** (確かめ用) で学習前後を比べます (4)。
# 選ぶのに使った質問で成績を報告すると、たまたまその質問に強いエポックを選んだ分だけ、数字が良く出すぎるからです。03 の検証用の損失も validation だけで測っています。
#
# 03 は各エポックのアダプターを残しています。それぞれで 2 種類の質問 (それぞれ最大 `EVAL_ROWS` 問) に答えさせ、一般的な文章の perplexity も測ります。
# - validation の質問: 完全一致の割合 (覚えて、言い換えにも答えられるか)
# - 一般的な質問 (`datasets/general_qa_ja.csv` のうち、02 で学習に混ぜなかったもの。4 の control (01 の質問) とは別のものです): 答えに学習したデータの答えが紛れ込んだ割合
#   (学習を続けすぎると、関係ない質問にまで学習した答えを返すようになります。損失や正解率だけでは見えません)
# - 一般的な文章 (日本や世界についての短い説明文) の perplexity: 学習で日本語や一般的な知識が崩れていないか (下の 5 で説明します)
#
# 「完全一致の割合 − 紛れ込みの割合」がいちばん高いエポックを勧めます。同じなら、一般的な文章の perplexity が低い (崩れが少ない) もの、
# 次に検証用の損失が低いもの、いちばん早いもの、の順です。学習の最後のエポックも、03 が損失だけで選んだエポックも、いちばん良いとは限りません。text のデータでは 03 が損失で選んだアダプターを使います。

# %%
from tqdm.auto import tqdm

from helpers import arithmetic, generation, plots, scores, tables

per_epoch = pd.DataFrame()
if epochs and not data.is_text(splits):
    rows = data.first(splits["validation"], cfg.EVAL_ROWS)
    prompts, expected, _ = data.last_turns(rows)
    general_questions, general_expected = (part[:cfg.EVAL_ROWS] for part in data.general_questions(splits["train"]))  # 混ぜなかったもの
    own_answers = data.trained_answers(data.own_rows(splits["train"]))  # 自分のデータの答え (混ぜた一般的な行は除く)
    exact, leaks, general_ppl = {}, {}, {}
    for epoch, folder in tqdm(epochs.items(), desc="エポックごとの採点", unit="エポック"):
        model.load_adapter(folder, adapter_name=f"epoch-{epoch}")
        model.set_adapter(f"epoch-{epoch}")
        answers = generation.answer(model, tokenizer, prompts + general_questions, **generate_kwargs)
        exact[epoch] = sum(map(scores.exact_match, answers, expected)) / len(rows)
        leaks[epoch] = sum(bool(scores.leaked(a, own_answers, e, q)) for a, e, q in
                           zip(answers[len(prompts):], general_expected, general_questions)) / max(len(general_questions), 1)
        general_ppl[epoch] = generation.perplexity(model, tokenizer, data.general_text())  # 一般的な文章
        model.set_adapter("default")  # 03 のアダプター (models.load で重ねたもの)
        model.delete_adapter(f"epoch-{epoch}")
    history = plots.loss_history(run["log_history"])  # 03 の損失の推移 (アダプターと一緒に保存されたもの)
    per_epoch = (pd.DataFrame({"exact_match": exact, "leak_rate": leaks, "general_perplexity": general_ppl})
                 .rename_axis("epoch").join(history["validation_loss"]))
    recommended = checkpoints.recommended(per_epoch)
    print(f"おすすめ: epoch {recommended} (完全一致 {per_epoch.loc[recommended, 'exact_match']:.0%}、"
          f"一般的な質問 {len(general_questions)} 問への紛れ込み {per_epoch.loc[recommended, 'leak_rate']:.0%}、"
          f"検証用の損失 {per_epoch.loc[recommended, 'validation_loss']:.3f})")
    epochs_figure = plots.per_epoch(per_epoch, recommended)
    artefacts.save(out / artefacts.EPOCHS_PLOT, epochs_figure)
    choice = recommended if choice == "recommended" else choice
if choice in ("recommended", "adapter"):  # text のデータか、エポックごとのアダプターがないとき
    choice, chosen_dir = "adapter", adapter_dir
    model.set_adapter("default")
else:
    chosen_dir = epochs[choice]
    model.load_adapter(chosen_dir, adapter_name="chosen")
    model.set_adapter("chosen")
print(f"このあとは {'03 が選んだアダプター' if choice == 'adapter' else f'epoch {choice} のアダプター'} を使います。")
tables.japanese(per_epoch)

# %% [markdown]
# ## 4. 学習前と学習後で答えさせる
# train は学習に使った質問、heldout は学習にもエポックを選ぶのにも使わなかった質問 (3 の確かめ用) です。学習データに無い 01 の質問が control です。control の期待する答えは一般的な知識 (01 の `expected`) です。
# 02 で会話のデータを選んだときは、各会話の **最後の答え** を比べます (それまでの会話をプロンプトとして渡し、最後の答えを生成させます)。
# 02 で text を選んだときは、質問の代わりに段落の書き出しを渡して続きを書かせ、段落ごとの **perplexity** も比べます。

# %%
# question_sets: 区分ごとに (モデルに渡すプロンプト, 期待する答え, 表に出す質問, チャット形式か)。
# 会話のデータでは、プロンプトは最後の答えの直前までの会話、期待する答えは最後の答えです。
control = pd.DataFrame({"question": control_questions["instruction"], "expected": control_questions["output"]})
own = data.own_rows(splits["train"])  # 自分のデータの行 (02 で混ぜた一般的な質問の行は、ここでは採点しません)
evaluated = {"train": data.first(own, cfg.EVAL_ROWS), "heldout": data.first(splits["heldout"], cfg.EVAL_ROWS)}  # 選ぶのに使っていない半分
if data.is_text(splits):
    texts = {name: rows["text"] for name, rows in evaluated.items()}
    with model.disable_adapter():
        before_ppl = {name: generation.perplexity(model, tokenizer, t) for name, t in texts.items()}
    after_ppl = {name: generation.perplexity(model, tokenizer, t) for name, t in texts.items()}
    question_sets = {}
    for name, paragraphs in texts.items():
        openings, expected = data.continuations(paragraphs)
        question_sets[name] = (openings, expected, openings, False)
    trained_answers = []
else:
    question_sets = {name: (*data.last_turns(rows), True) for name, rows in evaluated.items()}
    known = {q for part in splits.values() for q in data.last_turns(part)[2]}  # 全部の行から
    control = control[~control["question"].isin(known)]
    answered = {"heldout": question_sets["heldout"][:2]}  # 正解の答えの perplexity (control は一般的な知識)
    if len(control):
        answered["control"] = (list(control["question"]), list(control["expected"]))
    with model.disable_adapter():
        before_ppl = {name: generation.answer_perplexity(model, tokenizer, *pair) for name, pair in answered.items()}
    after_ppl = {name: generation.answer_perplexity(model, tokenizer, *pair) for name, pair in answered.items()}
    trained_answers = data.trained_answers(own)  # 自分のデータの答え (会話では途中の答えも)
question_sets["control"] = (list(control["question"]), list(control["expected"]), list(control["question"]), True)
with model.disable_adapter():  # 一般的な文章 (日本や世界についての短い説明文): 日本語と一般的な知識が崩れていないか
    before_ppl["general_text"] = generation.perplexity(model, tokenizer, data.general_text())
after_ppl["general_text"] = generation.perplexity(model, tokenizer, data.general_text())
perplexity = pd.DataFrame({"perplexity_before": before_ppl, "perplexity_after": after_ppl}).round(2)
artefacts.save(out / artefacts.PERPLEXITY, perplexity)

parts = []
for split, (prompts, expected, shown, chat) in question_sets.items():
    with model.disable_adapter():
        before = generation.answer(model, tokenizer, prompts, chat=chat, progress=f"{split} 学習前", **generate_kwargs)
    after = generation.answer(model, tokenizer, prompts, chat=chat, progress=f"{split} 学習後", **generate_kwargs)
    parts.append(tables.comparison(split, shown, expected, before, after, trained_answers))
table = pd.concat(parts, ignore_index=True)
artefacts.save(out / artefacts.COMPARISON, table, index=False)
if (out / artefacts.BASELINE).exists() and not cfg.DO_SAMPLE:  # 01 の答えがあれば、ここでの学習前の答えと同じか
    saved = pd.read_csv(out / artefacts.BASELINE, keep_default_na=False)
    if set(saved["model"]) != {trained.MODEL}:
        print(f"01 は別のモデル ({', '.join(set(saved['model']))}) で実行されているので、01 の答えとは比べません。")
    saved = saved[saved["model"] == trained.MODEL].merge(table[table["split"] == "control"], on="question")
    if len(saved):
        print(f"01 で保存した答えと、ここでの学習前の答えの一致率 (control {len(saved)} 問): {(saved['answer'] == saved['before']).mean():.0%}")
tables.highlight(table)

# %% [markdown]
# ## 5. まとめの数字
# - **exact match** (完全一致): 正規化 (全角/半角の統一、空白と句読点の除去) してから、答えが正解と同じだった割合。厳しい基準です
# - **char F1**: 答えと正解に共通する文字の割合 (0〜1)。惜しい答えにも部分点が付きます。日本語は単語の区切りがないので、文字単位で測ります
# - **perplexity**: 正解の文章を、モデルがどれだけ「意外」と感じるか (低いほど慣れている)。質問と答えのデータでは答えの部分だけで測ります。
#   control の正解の答え (一般的な知識) と、**一般的な文章** (`datasets/tiny_corpus_ja.txt`: 日本や世界についての短い説明文) でも測ります。
#   control の正解や一般的な文章の perplexity が学習後に大きく上がったら、日本語や一般的な知識が崩れています (学習しすぎのサイン。エポック数か学習率を下げます)
# - **leaked**: control の答えに学習した答えが紛れ込んだ数。0 でなければ、関係ない質問にまで学習内容を答えています。
#   そのままの答え (「ソラリスです。」) だけでなく、言い換え (「銀色のかぼちゃです。」を学習して「青い色のかぼちゃです。」) も数えます。
#   02 で混ぜた一般的な質問の答え (「ロンドンです。」など) が control に出ても、leaked には数えません (間違いとして、完全一致の割合が下がることで分かります)
# - **distinct**: 学習後の答えの種類の数。質問ごとに違う答えを覚えたなら、事実の数と同じくらいになります
#
# 採点したアダプター (3 で選んだもの) は、採点結果と一緒に `evaluated_adapter/` に保存します。05 はこれを保存・共有し、モデルカードにこの採点を載せます。
#
# **損失や perplexity だけで判断しない**: 損失が下がっても、答えの書き方 (「です。」など) を覚えただけで中身が違うことがあります。
# 逆に、正しい答えでも言い回しが違えば perplexity は高く出ます。実際の答えを表で見て確かめるのがいちばん確実です。

# %%
summary = tables.summary(table)
artefacts.save(out / artefacts.SUMMARY, summary)
artefacts.save_evaluated(out, chosen_dir, tokenizer, run, checkpoint=choice, summary=summary)  # 05 はこのアダプターを保存・共有する
print(tables.headline(table))
display(tables.japanese(perplexity))
tables.japanese(summary)

# %% [markdown]
# ## 6. 口調や書き方は身についた？
# ファインチューニングがいちばん得意なのは、新しい知識よりも **答え方 (口調、書式、長さ)** を変えることです。
# 学習データの答えの多くに共通する終わり方 (サンプルの猫の口調なら「だにゃ。」、架空の事実なら「です。」) を口調の印として、
# 答えがその口調になった割合と、口調を除いた **中身** (正解の「東京」など) が答えに残っている割合を、学習の前後で比べます。
# 口調だけ身について中身が崩れたら、エポック数を減らすか学習率を下げます。印は `STYLE_ENDING` で自分で決めることもできます。

# %%
# @title 口調の設定 (既定のままで OK・セルは実行)
# @markdown **STYLE_ENDING**: 口調の印にする答えの終わり方 (例: だにゃ。)。空なら、学習データの答えに共通する終わり方を使います。
STYLE_ENDING = ""  # @param {type:"string"}

cfg = SimpleNamespace(**vars(cfg) | vars(settings.collect(STYLE_ENDING=STYLE_ENDING)))
ending = cfg.STYLE_ENDING or scores.style_ending(trained_answers)  # 空なら、学習した答えに共通する終わり方
style = tables.style_scores(table, ending) if ending and not data.is_text(splits) else pd.DataFrame()
if len(style) and not cfg.STYLE_ENDING and style["style_before"].mean() >= 0.5:
    print(f"学習前から「{ending}」で終わる答えがほとんどなので、口調は学習の対象ではありません (この節は飛ばします)。")
    style = pd.DataFrame()
elif len(style):
    print(f"口調の印: 答えが「{ending}」で終わる")
    display(tables.japanese(style))
else:
    style = pd.DataFrame()
    print("text のデータでは口調は測りません。" if data.is_text(splits) else
          "学習した答えに共通する終わり方がないので、この節は飛ばします (STYLE_ENDING で決めることもできます)。")

# %% [markdown]
# ## 7. 答えが数のとき (計算問題、価格、高さなど。数の答えでなければ説明は読まなくて OK・セルは実行)
# 検証用の正解の 8 割以上が数なら、答えから数を読み取って比べます (「8」「8.0」「答えは8です」「5 + 3 = 8」「８」も同じ 8)。
# - **greedy**: いつもどおり 1 つの答えを作って、その数を読む
# - **top-k 重み付き**: 確率の高い答えの候補を `TOP_K` 個作り、それぞれの数を確率で重み付けして平均する (迷っているときに極端な値を避けられます)
#
# 誤差の平均 (MAE)、対数の誤差 (RMSLE: 大きな数と小さな数を同じ重みで見る)、誤差が `TOLERANCE` 以内の割合 (hit rate) を並べます。
# 計算問題なら、演算と桁数ごとの正解率も出します。

# %%
# @title 数の答えの設定 (既定のままで OK・セルは実行)
# @markdown **TOLERANCE**: 答えが数のとき、正解とみなす誤差。0 なら完全に一致したときだけ正解。
TOLERANCE = 0.0  # @param {type:"number"}
# @markdown **TOP_K**: 答えが数のとき、重み付き平均に使う答えの候補の数。ふつうは 3〜5。
TOP_K = 3  # @param {type:"integer"}

cfg = SimpleNamespace(**vars(cfg) | vars(settings.collect(TOLERANCE=TOLERANCE, TOP_K=TOP_K)))
heldout_rows = table[table["split"] == "heldout"]
truth = [scores.parse_number(e) for e in heldout_rows["expected"]]
numeric = breakdown = pd.DataFrame()
if not data.is_text(splits) and len(truth) and sum(t is not None for t in truth) >= 0.8 * len(truth):
    questions = list(heldout_rows["question"])
    predictions = {"before": [scores.parse_number(a) for a in heldout_rows["before"]],
                   "greedy": [scores.parse_number(a) for a in heldout_rows["after"]],
                   "top_k": generation.weighted_number(model, tokenizer, question_sets["heldout"][0], k=cfg.TOP_K,
                                                      max_new_tokens=cfg.MAX_NEW_TOKENS, progress="top-k")}
    numeric = pd.DataFrame({method: scores.numeric_scores(values, truth, cfg.TOLERANCE)
                            for method, values in predictions.items()}).T
    artefacts.save(out / artefacts.NUMERIC, numeric)
    numbers = tables.numeric_table(questions, truth, predictions, cfg.TOLERANCE)
    numeric_figure = plots.predicted_vs_true(numbers, ["before", "greedy", "top_k"])
    artefacts.save(out / artefacts.NUMERIC_PLOT, numeric_figure)
    breakdown = arithmetic.breakdown(table[table["split"] != "control"])
    display(tables.japanese(numeric))
    display(tables.japanese(breakdown))
    display(tables.colour_errors(numbers, cfg.TOLERANCE))
else:
    print("正解が数のデータではないので、この節は飛ばします。")

# %% [markdown]
# ## 8. 一般的な日本語の力は落ちていない？ (ELYZA-tasks-100)
# 自分のデータを覚えさせると、ほかのことが苦手になっていないかが気になります。**ELYZA-tasks-100** は、日本語の LLM の講座や比較でよく使われる 100 問の課題集です
# (アイデア出し、要約、物語、計算、敬語など。それぞれに模範解答と採点基準 `eval_aspect` があります。株式会社 ELYZA、CC BY-SA 4.0。`datasets/elyza_tasks_100.jsonl`)。
# 最初の `GENERAL_TASKS` 問に、学習前 (アダプターを外したモデル) と学習後で答えさせて並べます。
# - **模範解答の perplexity**: 採点する人がいなくても測れる合図です。模範解答を、モデルがどれだけ「意外」と感じるか。**学習後に大きく上がったら、一般的な日本語の力が落ちています** (学習しすぎ)。
# - **採点 (任意)**: OpenAI 互換の API を持つ別のモデルを採点者にできます (左の鍵のアイコンの「シークレット」か環境変数に `JUDGE_BASE_URL`、`JUDGE_MODEL`、`JUDGE_API_KEY`)。
#   各答えを採点基準に沿って 1〜5 点で採点します。キーは表示も保存もしません。採点者につながらないときは、採点なしで先へ進みます。
#
# 小さなモデルを数十行で学習しただけなので、点数そのものは高くなくて当然です。見るのは **学習の前と後の差** です。
# このモデルが一度に読める長さに入らない問題は飛ばし、どれを飛ばしたかを表示します。答えは 1 問 256 トークンまでです。

# %%
# @title 一般的な力の設定 (既定のままで OK・セルは実行)
# @markdown **GENERAL_TASKS**: ELYZA-tasks-100 の何問で比べるか。0 なら測りません。ふつうは 5〜20。多いほど確かになり、時間がかかります (T4 での時間はまだ測っていません)。
GENERAL_TASKS = 10  # @param {type:"integer"}

from helpers import general

cfg = SimpleNamespace(**vars(cfg) | vars(settings.collect(GENERAL_TASKS=GENERAL_TASKS)))
general_table = pd.DataFrame()
if cfg.GENERAL_TASKS:
    general_table = general.compare(model, tokenizer, cfg.GENERAL_TASKS, judge=general.judge_from_environment())
    artefacts.save(out / artefacts.GENERAL, general_table[general.COLUMNS], index=False)
    print(general.reading(general_table))
    display(tables.japanese(general_table[general.COLUMNS].set_index("task")))
else:
    print("GENERAL_TASKS が 0 なので、この節は飛ばします。")

# %% [markdown]
# ## 9. レポートを保存する
# 表とグラフを 1 つの HTML ファイル (`report.html`) にまとめます。Jupyter がなくてもブラウザで開けて、人に渡すこともできます。

# %%
from helpers import report

sections = {
    "まとめ": [f"モデル {trained.MODEL}、学習 {run['run']} (エポック数 {trained.EPOCHS}、学習率 {trained.LEARNING_RATE})、"
               f"使ったアダプター: {'03 が選んだもの' if choice == 'adapter' else f'epoch {choice}'}",
               tables.japanese(summary), tables.japanese(perplexity)],
    "損失の推移": [plots.plot_loss(plots.loss_history(run["log_history"]))],
    "エポックごとの評価": [tables.japanese(per_epoch)] + ([epochs_figure] if len(per_epoch) else []),
    "学習前と学習後の答え": [tables.highlight(table)],
}
if len(style):
    sections[f"口調 (「{ending}」で終わる答え)"] = [tables.japanese(style)]
if len(numeric):
    sections["数の答え"] = [tables.japanese(numeric), tables.japanese(breakdown), numeric_figure]
if len(general_table):
    sections["一般的な日本語の力 (ELYZA-tasks-100)"] = [general.reading(general_table),
                                                       tables.japanese(general_table[general.COLUMNS].set_index("task"))]
print(f"保存しました: {report.write(out / artefacts.REPORT, '学習前と学習後の比較', sections)}")

# %% [markdown]
# ## 10. 自分で質問してみる
# 質問を入力すると、学習前と学習後の答えを並べて表示します (ipywidgets がない環境では、入力欄が順に出る形になります。「終了」で終わります)。

# %%
from helpers import chat

chat.box(model, tokenizer, **generate_kwargs)

# %% [markdown]
# ## まとめと次のステップ
# - エポックごとに採点して使うアダプターを選び、学習前と学習後の答えを train / heldout / control ごとに採点して、`comparison.csv`・`summary.csv`・`report.html` に保存しました。ELYZA-tasks-100 で、一般的な日本語の力が学習の前後でどう変わったかも `general.csv` に残しました。
# - heldout が低いときは、言い回しを増やしたデータで学習し直すと改善します。control に leaked が出たら、エポック数を減らすか学習率を下げるか、02 の `GENERAL_ROWS` (混ぜる一般的な質問) を増やしてください。
# - 小さなモデルほど、学習した答えが関係ない質問に紛れ込みやすく、元の知識も崩れやすくなります (本物の Gemma 3 270M で測った結果は README にあります)。
# - control の正解率が学習前より下がったら、元の知識を少し忘れています (練習用モデルでは 5 問のうち 1 問、たとえば「富士山の高さ」が 3376 メートルに崩れることがあります)。学習したデータに似た種類の質問ほど影響を受けます。
#
# 次の一歩: 02 で自分の CSV や計算問題に差し替えて、同じ流れをもう一度試してみましょう。
# 学習したモデルを保存・共有し、チャットやサーバーで使うのが **05** です。下の「おわり」のセルを実行してから、このランタイムを閉じてください
# (メニューの「ランタイム」→「ランタイムを接続解除して削除」。次のノートブックは新しいランタイムで開きます。結果は Google Drive を通って届きます)。
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-finetune-ja/llm-finetune-ja/blob/main/notebooks/05_share_and_serve.ipynb) 05: 保存・共有して使う
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/llm-finetune-ja/llm-finetune-ja/blob/main/notebooks/02_build_dataset.ipynb) 02: 自分のデータで、もう一度

# %%
# @title おわり: 結果を Drive に書き終える
# @markdown Colab では、まだ Drive に届いていない書き込みを済ませて Drive を切り離し、このランタイムを閉じてよいことを表示します。ローカルの Jupyter では何もしません。
from helpers import colab

colab.finish()
