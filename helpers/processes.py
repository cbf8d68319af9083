"""Several processes, one training (`accelerate launch`, torchrun): the first one writes, all wait together."""
from __future__ import annotations

import os


def is_writer() -> bool:
    """False in every process but the first: one process writes the files the run shares."""
    return int(os.environ.get("RANK", 0)) == 0


def wait_for_everyone() -> None:
    """Wait until every process of the run gets here (nothing to wait for in a single process)."""
    import torch  # here: `helpers.data check` needs no torch
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
