"""Which torch device a model stage runs on: `auto` is the GPU Ray gave the actor, else the CPU."""

from __future__ import annotations


def torch_device(name: str) -> str:
    """`auto` -> "cuda" when this process sees a GPU (an actor with num_gpus > 0), else "cpu"; others as given."""
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
