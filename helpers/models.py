"""Which model to load: a Hub id, a local folder, or `tiny` (built offline from this repo)."""
from __future__ import annotations

from pathlib import Path

# Models a free Colab T4 can fine-tune (see README); the notebook field also accepts any id.
CHOICES = [
    "llm-jp/llm-jp-3.1-1.8b-instruct4",
    "sbintuitions/sarashina2.2-1b-instruct-v0.1",
    "Qwen/Qwen2.5-1.5B-Instruct",
    "Qwen/Qwen2.5-0.5B-Instruct",
    "tiny",
]
TINY = "tiny"


def resolve(model: str) -> str:
    """A path or Hub id `from_pretrained` accepts; `tiny` builds (once) the offline model."""
    model = model.strip()
    if model == TINY:
        from . import tiny
        return str(tiny.path())
    return str(Path(model).expanduser()) if Path(model).expanduser().is_dir() else model
