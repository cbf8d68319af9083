"""Things built once into the cache folder: whole or not at all, also when two processes build at once."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def folder() -> Path:
    """The cache folder (`FINETUNE_CACHE_DIR`, or ~/.cache/llm-finetune-ja)."""
    return Path(os.environ.get("FINETUNE_CACHE_DIR", Path.home() / ".cache" / "llm-finetune-ja"))


def built(target: Path, build: Callable[[Path], None], ready: str, say: str = "") -> Path:
    """`target`, made by `build(staging)` in a folder beside it and renamed into place once whole; it is
    there when its file `ready` is. `say` is printed before building. A process that finishes second keeps
    the first one's."""
    if (target / ready).exists():
        return target
    if say:
        print(say, flush=True)
    shutil.rmtree(target, ignore_errors=True)  # left by an older build that had no `ready` file
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        build(staging)
        try:
            staging.rename(target)
        except OSError:  # built meanwhile by another process
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
