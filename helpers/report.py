"""A self-contained HTML report (tables and images inside) that opens without Jupyter."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import pandas as pd

from .artefacts import save

STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}"
         "th{background:#f3f3f3}img{max-width:100%}")


def _block(item) -> str:
    if isinstance(item, pd.io.formats.style.Styler):
        return item.to_html()
    if isinstance(item, pd.DataFrame):
        return item.to_html(escape=True)
    if hasattr(item, "savefig"):  # a matplotlib figure
        png = io.BytesIO()
        item.savefig(png, format="png", dpi=120)
        return _image(png.getvalue(), item.axes[0].get_title() if item.axes else "")
    if isinstance(item, Path):
        return _image(item.read_bytes(), item.name)
    return f"<p>{html.escape(str(item))}</p>"


def _image(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def write(path: Path, title: str, sections: dict[str, list]) -> Path:
    """`sections`: heading → items (DataFrame, Styler, figure, PNG path or text), in order; written whole or not at all."""
    body = "".join(f"<h2>{html.escape(heading)}</h2>" + "".join(_block(i) for i in items)
                   for heading, items in sections.items())
    return save(path, f'<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>{html.escape(title)}'
                      f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")
