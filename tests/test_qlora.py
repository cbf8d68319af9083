"""The 4-bit (QLoRA) path of notebooks 03/04 on CPU: bitsandbytes NF4 weights, LoRA learns."""
import re

import pandas as pd

from helpers import notebooks
from helpers.scores import normalize


def test_qlora_notebooks_learn_the_facts(tmp_path):
    # 03 prepares 02's default data itself; 01 and 05 add nothing here
    notebooks.run(tmp_path, since="03", upto="04", settings={"USE_4BIT": True, "GRADIENT_CHECKPOINTING": True})
    executed = (tmp_path / "executed" / "03_lora_finetune.ipynb").read_text(encoding="utf-8")
    footprint = int(re.search(r"読み込んだモデルのメモリ: (\d+) MiB", executed).group(1))
    assert footprint <= 2  # NF4: about 1 MiB for the tiny model (4 MiB in float32)
    table = pd.read_csv(tmp_path / "comparison.csv", keep_default_na=False)
    facts = table[table["split"] != "control"]
    before = (facts["before"].map(normalize) == facts["expected"].map(normalize)).mean()
    after = (facts["after"].map(normalize) == facts["expected"].map(normalize)).mean()
    assert before <= 0.1 and after >= 0.9, (before, after)
    assert (facts["after"] != facts["before"]).mean() >= 0.9  # the adapter changed the answers
