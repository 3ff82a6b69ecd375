"""Pure-PyTorch generators and the checkpoint formats they load from.  No Qt, no engine."""

from ganinterface.models.base import (CheckpointError, GeneratorBase, LayerInfo, SynthesisOutput,
                                      size_text)

__all__ = ["CheckpointError", "GeneratorBase", "LayerInfo", "SynthesisOutput", "load_generator",
           "size_text"]


def load_generator(path, device="cpu"):
    """Load any supported checkpoint (NVlabs .pkl, rosinality .pt, native .safetensors)."""
    from ganinterface.models.loading import load_generator as _load

    return _load(path, device=device)
