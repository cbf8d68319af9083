"""Plots for the notebooks, labelled in Japanese (the IPAexGothic font that matplotlib-fontja registers)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib_fontja  # noqa: F401  (importing it makes IPAexGothic matplotlib's font: no tofu boxes)
import pandas as pd
from matplotlib.ticker import PercentFormatter

from .tables import LABELS

METHODS = LABELS | {"before": "学習前"}  # the legend of predicted_vs_true


def loss_history(log_history: list[dict]) -> pd.DataFrame:
    """Train and validation loss per epoch from `trainer.state.log_history`."""
    train = {round(e["epoch"], 2): e["loss"] for e in log_history if "loss" in e}
    valid = {round(e["epoch"], 2): e["eval_loss"] for e in log_history if "eval_loss" in e}
    table = pd.DataFrame({"train_loss": pd.Series(train), "validation_loss": pd.Series(valid)})
    table.index.name = "epoch"
    return table


def plot_loss(history: pd.DataFrame):
    """The loss per epoch, on the training and the validation rows."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for column, label in (("train_loss", "学習用 (train)"), ("validation_loss", "検証用 (validation)")):
        series = history[column].dropna()
        ax.plot(series.index, series.values, marker="o", markersize=3, label=label)
    ax.set_xlabel("エポック")
    ax.set_ylabel("損失 (loss)")
    ax.set_title("学習用と検証用の損失")
    ax.legend()
    fig.tight_layout()
    return fig


def length_histogram(lengths: list[int], max_length: int):
    """Histogram of token lengths with the max-length cut-off marked."""
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(lengths, bins=30)
    ax.axvline(max_length, color="red", linestyle="--", label=f"MAX_LENGTH = {max_length}")
    ax.set_xlabel("1 行のトークン数 (質問 + 答え + 終わりの印)")
    ax.set_ylabel("行数")
    ax.set_title("行の長さの分布")
    ax.legend()
    fig.tight_layout()
    return fig


def per_epoch(table: pd.DataFrame, recommended: int):
    """Exact match and leaks into general questions (left axis) and validation loss (right axis) per epoch,
    the recommendation marked."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(table.index, table["exact_match"], marker="o", markersize=3, color="tab:green", label="完全一致の割合")
    ax.plot(table.index, table["leak_rate"], marker="o", markersize=3, color="tab:red", label="一般的な質問への紛れ込み")
    ax.set_xlabel("エポック")
    ax.set_ylabel("割合")
    ax.set_ylim(-0.05, 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    loss_axis = ax.twinx()
    loss_axis.plot(table.index, table["validation_loss"], marker="o", markersize=3, color="tab:orange",
                   label="検証用の損失")
    loss_axis.set_ylabel("検証用の損失")
    ax.axvline(recommended, color="gray", linestyle="--", label=f"おすすめ: エポック {recommended}")
    ax.set_title("エポックごとの正解率・紛れ込み・損失")
    handles = ax.get_legend_handles_labels()[0] + loss_axis.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="center right")
    fig.tight_layout()
    return fig


def predicted_vs_true(table: pd.DataFrame, methods: list[str]):
    """Scatter of predicted against true values, one colour per method, with the y = x line."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    values = table["truth"].dropna()
    for method in methods:
        rows = table[[method, "truth"]].dropna()
        ax.scatter(rows["truth"], rows[method], s=12, alpha=0.7, label=METHODS.get(method, method))
    if len(values):
        ax.plot([values.min(), values.max()], [values.min(), values.max()], color="gray", linewidth=1)
    ax.set_xlabel("正解の値")
    ax.set_ylabel("予測した値")
    ax.set_title("予測と正解 (線の上なら正解)")
    ax.legend()
    fig.tight_layout()
    return fig
