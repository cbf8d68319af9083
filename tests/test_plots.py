"""The plots are labelled in Japanese and drawn with a font that has every character (no tofu boxes)."""
import warnings

import matplotlib
import pandas as pd
import pytest
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

from helpers import plots

pytestmark = [pytest.mark.colab, pytest.mark.unit]  # under Colab's versions too; in make test-unit


def figures():
    history = pd.DataFrame({"train_loss": [2.0, 1.0], "validation_loss": [2.1, 1.4]},
                           index=pd.Index([1, 2], name="epoch"))
    per_epoch = pd.DataFrame({"exact_match": [0.2, 0.8], "leak_rate": [0.0, 0.1], "validation_loss": [1.5, 1.2]},
                             index=pd.Index([1, 2], name="epoch"))
    numbers = pd.DataFrame({"truth": [1.0, 2.0], "before": [3.0, None], "greedy": [1.0, 2.0]})
    return [plots.plot_loss(history), plots.length_histogram([12, 30, 31], 32), plots.per_epoch(per_epoch, 2),
            plots.predicted_vs_true(numbers, ["before", "greedy"])]


def test_every_plot_is_in_japanese_and_its_font_has_every_character():
    for figure in figures():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # matplotlib warns "Glyph … missing from font(s)" for a tofu box
            figure.canvas.draw()
        texts = [t.get_text() and t for t in figure.findobj(matplotlib.text.Text) if t.get_text()]
        japanese = [t for t in texts if any(ord(c) >= 0x3000 for c in t.get_text())]
        assert japanese, [t.get_text() for t in texts]
        for text in japanese:
            path = font_manager.findfont(text.get_fontproperties(), fallback_to_default=False)
            covered = FT2Font(path).get_charmap()
            missing = [c for c in text.get_text() if not c.isspace() and ord(c) not in covered]
            assert not missing, f"{text.get_text()!r}: {missing} not in {path}"
