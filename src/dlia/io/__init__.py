"""Saving and loading: single-file checkpoints (model + optimizer + step + RNG), written atomically."""

from dlia.io.atomic import atomic_write
from dlia.io.checkpoint import (
    Checkpoint,
    CheckpointError,
    checkpoint_name,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)

__all__ = [
    "Checkpoint", "CheckpointError", "atomic_write", "checkpoint_name", "latest_checkpoint",
    "load_checkpoint", "save_checkpoint",
]
