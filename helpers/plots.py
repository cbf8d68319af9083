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
