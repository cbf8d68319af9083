"""Notebook 03's training from the command line, with the form values notebook 03 saved.

    python -m helpers.train --config outputs/train_settings.json [--output-dir DIR]
    accelerate launch --num_processes 2 -m helpers.train --config outputs/train_settings.json

It runs the notebook's own code (`notebooks/03_lora_finetune.py`), each saved value passed as
`TUTORIAL_<NAME>`, so the command line and the notebook cannot drift apart.
"""
from __future__ import annotations

import argparse
import json
import os
import runpy

from . import NOTEBOOK_DIR
from .env import OUTPUT_VARIABLE

NOTEBOOK = NOTEBOOK_DIR / "03_lora_finetune.py"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m helpers.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="03 が保存した train_settings.json")
    parser.add_argument("--output-dir", help=f"出力フォルダ (既定: {OUTPUT_VARIABLE} か outputs/)")
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as f:
        values = json.load(f)
    os.environ.update({f"TUTORIAL_{name}": str(value) for name, value in values.items()})
    if args.output_dir:
        os.environ[OUTPUT_VARIABLE] = args.output_dir
    runpy.run_path(str(NOTEBOOK), run_name="__main__")


if __name__ == "__main__":
    main()
