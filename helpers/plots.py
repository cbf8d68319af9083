"""Plots for the notebooks."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd


def loss_history(log_history: list[dict]) -> pd.DataFrame:
    """Train and validation loss per epoch from `trainer.state.log_history`."""
    train = {round(e["epoch"], 2): e["loss"] for e in log_history if "loss" in e}
    valid = {round(e["epoch"], 2): e["eval_loss"] for e in log_history if "eval_loss" in e}
    table = pd.DataFrame({"train_loss": pd.Series(train), "validation_loss": pd.Series(valid)})
    table.index.name = "epoch"
    return table


def plot_loss(history: pd.DataFrame):
    """Line plot of the loss table; English labels so no Japanese font is needed."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for column, label in (("train_loss", "train"), ("validation_loss", "validation")):
        series = history[column].dropna()
        ax.plot(series.index, series.values, marker="o", markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("training / validation loss")
    ax.legend()
    fig.tight_layout()
    return fig


def length_histogram(lengths: list[int], max_length: int):
    """Histogram of token lengths with the max-length cut-off marked."""
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(lengths, bins=30)
    ax.axvline(max_length, color="red", linestyle="--", label=f"max_length={max_length}")
    ax.set_xlabel("tokens per row (prompt + answer + EOS)")
    ax.set_ylabel("rows")
    ax.legend()
    fig.tight_layout()
    return fig


def per_epoch(table: pd.DataFrame, recommended: int):
    """Exact match (left axis) and validation loss (right axis) per epoch, the recommendation marked."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(table.index, table["exact_match"], marker="o", markersize=3, color="tab:green", label="exact match")
    ax.set_xlabel("epoch")
    ax.set_ylabel("exact match (validation)")
    ax.set_ylim(-0.05, 1.05)
    loss_axis = ax.twinx()
    loss_axis.plot(table.index, table["validation_loss"], marker="o", markersize=3, color="tab:orange",
                   label="validation loss")
    loss_axis.set_ylabel("validation loss")
    ax.axvline(recommended, color="gray", linestyle="--", label=f"recommended: epoch {recommended}")
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
        ax.scatter(rows["truth"], rows[method], s=12, alpha=0.7, label=method)
    if len(values):
        ax.plot([values.min(), values.max()], [values.min(), values.max()], color="gray", linewidth=1)
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.legend()
    fig.tight_layout()
    return fig
