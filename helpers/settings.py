"""Form values, overridable from the environment (`TUTORIAL_<NAME>`), saved as JSON.

The overrides let CI and `make demo` run the same notebooks on the tiny model
(`TUTORIAL_MODEL=tiny`, more epochs and a higher learning rate suited to it) without editing them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

PREFIX = "TUTORIAL_"


def _cast(text: str, like):
    if isinstance(like, bool):
        return text.strip().lower() in ("1", "true", "yes", "on")
    return type(like)(text) if isinstance(like, (int, float)) else text


def collect(**values) -> SimpleNamespace:
    """Return the form values, each replaced by `TUTORIAL_<NAME>` when that variable is set."""
    for name, value in values.items():
        if PREFIX + name in os.environ:
            values[name] = _cast(os.environ[PREFIX + name], value)
            print(f"{name} = {values[name]!r}  (環境変数 {PREFIX}{name} による上書き)")
    return SimpleNamespace(**values)


def save(settings: SimpleNamespace, path: Path) -> None:
    if int(os.environ.get("RANK", 0)):  # under `accelerate launch` / torchrun one process writes
        return
    Path(path).write_text(json.dumps(vars(settings), ensure_ascii=False, indent=2), encoding="utf-8")


def load(path: Path) -> SimpleNamespace:
    return SimpleNamespace(**json.loads(Path(path).read_text(encoding="utf-8")))
