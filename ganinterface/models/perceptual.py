"""A user-supplied perceptual network: VGG16 features, as LPIPS measures distance with them.

ganinterface downloads nothing; a user who has the weights may pass them to the projection.  The
accepted file is exactly:

* a ``.safetensors`` file or a ``torch.save`` state dict (read with ``weights_only=True``),
* holding torchvision's ``vgg16`` convolution weights under their torchvision names
  ``features.{0,2,5,7,10,12,14,17,19,21,24,26,28}.{weight,bias}`` (any ``classifier.*`` keys are
  ignored, so a whole torchvision ``vgg16`` state dict loads),
* optionally with LPIPS's linear layers merged in: ``lin{0..4}.model.1.weight``, shape
  (1, C, 1, 1), the per-channel weights of the five compared layers.

Anything else is refused with one line naming the file.  The features are taken after relu1_2,
relu2_2, relu3_3, relu4_3 and relu5_3, from images shifted and scaled as LPIPS does.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganinterface.models.base import CheckpointError

# (torchvision index of each convolution, its output channels); a 2x2 max-pool follows the last
# convolution of each of the first four stages, and each stage's last ReLU is a compared layer.
STAGES = (((0, 64), (2, 64)),
          ((5, 128), (7, 128)),
          ((10, 256), (12, 256), (14, 256)),
          ((17, 512), (19, 512), (21, 512)),
          ((24, 512), (26, 512), (28, 512)))
# LPIPS's input scaling for images in [-1, 1] (its ScalingLayer).
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


class VGG16Features(nn.Module):
    """Images (N, 3, H, W) in [-1, 1] -> the five compared activations (``features``)."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleDict()
        in_channels = 3
        for stage in STAGES:
            for index, channels in stage:
                self.convs[str(index)] = nn.Conv2d(in_channels, channels, 3, padding=1)
                in_channels = channels
        self.register_buffer("shift", torch.tensor(SHIFT)[None, :, None, None], persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE)[None, :, None, None], persistent=False)
        # LPIPS's per-channel weights of each compared layer; ones when the file has none.
        self.channel_weights = nn.ParameterList(
            nn.Parameter(torch.ones(stage[-1][1]), requires_grad=False) for stage in STAGES)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = (images - self.shift) / self.scale
        compared = []
        for number, stage in enumerate(STAGES):
            if number:
                x = F.max_pool2d(x, 2)
            for index, _ in stage:
                x = F.relu(self.convs[str(index)](x))
            compared.append(x)
        return compared


def load_perceptual_network(path: str | os.PathLike[str]) -> VGG16Features:
    """The VGG16 (+ optional LPIPS weights) in ``path``, in eval mode; anything else is refused."""
    state = _read_state_dict(Path(path))
    network = VGG16Features()
    loaded = {}
    for stage in STAGES:
        for index, channels in stage:
            for part in ("weight", "bias"):
                key = f"features.{index}.{part}"
                if key not in state:
                    raise CheckpointError(path, f"not a VGG16 state dict (no {key}); expected "
                                                "torchvision vgg16 weights, optionally with LPIPS lin layers")
                loaded[f"convs.{index}.{part}"] = state[key]
    for number, stage in enumerate(STAGES):
        key = f"lin{number}.model.1.weight"
        loaded[f"channel_weights.{number}"] = (state[key].reshape(-1) if key in state
                                               else torch.ones(stage[-1][1]))
    try:
        network.load_state_dict(loaded, strict=True)
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1].strip()
        raise CheckpointError(path, f"VGG16 weights of the wrong shape ({reason})") from None
    return network.eval().requires_grad_(False)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    from ganinterface.models.loading import read_torch_weights_only

    if not path.is_file():
        raise CheckpointError(path, "no such perceptual network file")
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as error:  # safetensors raises its own error types for every kind of damage
            raise CheckpointError(path, f"not a readable safetensors file ({error})") from None
    state = read_torch_weights_only(path)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(path, "not a state dict (a mapping of names to tensors)")
    return state
