"""Colab's package list as a test environment: the versions the setup cell leaves as Colab has them.

    python -m tooling.colab_env DIR   # DIR/constraints.txt + DIR/requirements.txt for the Colab-versions venv

Google's list (`colab/pip-freeze.gpu.txt`) is copied unchanged from ../shared/colab; its sha256 is
committed beside it (`pip-freeze.gpu.txt.sha256`). The standard library alone here: it runs in a bare venv.
"""
from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from helpers import REPO_ROOT
from helpers.colab import name, requirements

COLAB_LIST = REPO_ROOT / "colab" / "pip-freeze.gpu.txt"
# Not taken from Colab's list: its CUDA builds of torch and what is built against them (the
# Colab-versions venv uses torch 2.13 for CPU, which needs a newer setuptools), and pip itself.
NOT_HERE = re.compile(r"^(torch|torchvision|torchaudio|torchcodec|triton|nvidia-.*|.*-cu\d+|pip|setuptools|wheel)$")
# Installed in Colab though no notebook imports them, and each changes what the libraries do when
# present: peft refuses an old torchao; transformers loads tokenizers through sentencepiece,
# protobuf or tiktoken. (Colab's TensorFlow and JAX are left out: transformers 5 ignores them.)
BESIDE = ["torchao", "sentencepiece", "protobuf", "tiktoken"]


def colab_versions(path: Path = COLAB_LIST) -> dict[str, str]:
    """Colab's `pip freeze` as {name: version}, local labels (`+cu128`) dropped; URL installs skipped."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s+]+)(\+\S+)?", line.strip())
        if match:
            found[name(match.group(1))] = match.group(2)
    return found


def testenv(folder: Path) -> None:
    """Write the constraints (Colab's versions but `NOT_HERE`) and the package list of the Colab-versions venv."""
    folder.mkdir(parents=True, exist_ok=True)
    colab = colab_versions()
    (folder / "constraints.txt").write_text(
        "".join(f"{package}=={version}\n" for package, version in sorted(colab.items())
                if not NOT_HERE.match(package)), encoding="utf-8")
    dev = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]["dev"]
    wanted = requirements() | requirements(dev) | {package: package for package in BESIDE}
    # Colab's version where Colab has the package (the constraints pin it; its kernel: ipykernel,
    # ipython, jupyter-client come the same way), else pinned as the setup cell installs it.
    lines = [package if package in colab else line for package, line in wanted.items()]
    (folder / "requirements.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")



if __name__ == "__main__":
    if len(sys.argv) == 2:
        testenv(Path(sys.argv[1]))
    else:
        sys.exit(__doc__)
