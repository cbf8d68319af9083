"""Ask your own question and see the base and tuned answers side by side."""
from __future__ import annotations

import html

from .generation import answer

EXIT_WORDS = ("終了", "exit", "quit", "q")


def both(model, tokenizer, question: str, **generate_kwargs) -> tuple[str, str]:
    """(base answer, tuned answer) for one question; `model` is a PeftModel."""
    with model.disable_adapter():
        before = answer(model, tokenizer, [question], **generate_kwargs)[0]
    return before, answer(model, tokenizer, [question], **generate_kwargs)[0]


def box(model, tokenizer, **generate_kwargs):
    """An ipywidgets text box; without ipywidgets, a plain input() loop."""
    try:
        import ipywidgets as widgets  # optional: without it, a plain input() loop
    except ImportError:
        return loop(model, tokenizer, **generate_kwargs)
    text = widgets.Text(placeholder="質問を入力して Enter か「聞く」を押してください", layout=widgets.Layout(width="70%"))
    button = widgets.Button(description="聞く")
    shown = widgets.HTML()

    def ask(_):
        if text.value.strip():
            before, after = both(model, tokenizer, text.value.strip(), **generate_kwargs)
            shown.value = (f"<table><tr><th>学習前</th><th>学習後</th></tr>"
                           f"<tr><td>{_escape(before)}</td><td>{_escape(after)}</td></tr></table>")

    button.on_click(ask)
    text.on_submit(ask)
    return widgets.VBox([widgets.HBox([text, button]), shown])


def loop(model, tokenizer, ask=input, show=print, **generate_kwargs) -> None:
    """Question prompt in a loop until an exit word (終了 / exit / quit / q) or an empty line."""
    show(f"質問を入力してください (終わるときは {' / '.join(EXIT_WORDS)} か空行)")
    while True:
        question = ask("質問> ").strip()
        if not question or question.lower() in EXIT_WORDS:
            show("終了します。")
            return
        before, after = both(model, tokenizer, question, **generate_kwargs)
        show(f"学習前: {before}\n学習後: {after}")


def _escape(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")
