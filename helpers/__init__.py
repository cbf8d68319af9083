"""Shared code for the notebooks: what would distract from the lesson lives here."""
import logging
import sys
import warnings
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
TINY = "tiny"  # the MODEL value that picks the offline tiny model (helpers.tiny)

# Known, harmless messages that would only confuse a beginner:
# bitsandbytes on some CPUs looks for an optional Hub kernel and falls back to its own code;
# peft 0.21 calls transformers 5's renamed gradient-checkpointing methods.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*", category=FutureWarning)

# Colab ships torchao 0.10, and peft (0.20, 0.21) raises "Found an incompatible version of torchao"
# for any torchao older than 0.16 as soon as it wraps a layer. The notebooks don't use torchao, so
# an old one is hidden from this Python process (find_spec gives None): nothing is uninstalled.
# (`packaging` only where torchao is: `python -m tooling.colab_env` runs in a venv with the standard library alone.)
TORCHAO_PEFT_ACCEPTS = "0.16.0"
try:
    _torchao = metadata.version("torchao")
except metadata.PackageNotFoundError:
    _torchao = None
if _torchao:
    from packaging.version import Version
    if Version(_torchao) < Version(TORCHAO_PEFT_ACCEPTS) and "torchao" not in sys.modules:
        sys.modules["torchao"] = None
