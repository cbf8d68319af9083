"""Shared code for the notebooks: what would distract from the lesson lives here."""
import logging
import warnings

# Known, harmless messages that would only confuse a beginner:
# bitsandbytes on some CPUs looks for an optional Hub kernel and falls back to its own code;
# peft 0.21 calls transformers 5's renamed gradient-checkpointing methods.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*", category=FutureWarning)
