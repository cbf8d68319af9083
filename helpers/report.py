"""A self-contained HTML report (tables and images inside) that opens without Jupyter."""
from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}"
         "th{background:#f3f3f3}img{max-width:100%}")


def _block(item) -> str:
    if isinstance(item, pd.io.formats.style.Styler):
        return item.to_html()
    if isinstance(item, pd.DataFrame):
        return item.to_html(escape=True)
    if isinstance(item, Path):
        data = base64.b64encode(item.read_bytes()).decode()
        return f'<img alt="{html.escape(item.name)}" src="data:image/png;base64,{data}">'
    return f"<p>{html.escape(str(item))}</p>"


def write(path: Path, title: str, sections: dict[str, list]) -> Path:
    """`sections`: heading → items (DataFrame, Styler, PNG path or text), in order."""
    body = "".join(f"<h2>{html.escape(heading)}</h2>" + "".join(_block(i) for i in items)
                   for heading, items in sections.items())
    Path(path).write_text(f'<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>{html.escape(title)}'
                          f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>",
                          encoding="utf-8")
    return Path(path)
