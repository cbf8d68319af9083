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
