"""NVlabs' StyleGAN2 ``resnet`` discriminator, the D that StyleGAN2-ADA and StyleGAN3 train with,
rebuilt from a user's checkpoint: an NVlabs pickle's ``D`` (``nvlabs_pkl.discriminator_from_data``)
or a rosinality file's ``d`` (``rosinality.load_rosinality_discriminator``).  Projection compares
pictures through its block activations (``features``).

Numerics and parameter names follow ``training/networks_stylegan2.py``: equalised learning rate,
leaky ReLU x sqrt 2 clamped to ``conv_clamp``, blocks of conv0 and a down-sampling conv1 (a [1, 3, 3,
1] low-pass, then a stride-2 convolution) plus a 1x1 down-sampling skip, both scaled by sqrt 0.5;
then the epilogue ``b4``: minibatch standard deviation, a 3x3 convolution and two fully connected
layers.  A conditional D maps its class label through a mapping network to ``cmap`` and projects
the output onto it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ganinterface.models import ops
from ganinterface.models.base import CheckpointError
from ganinterface.models.discriminator import minibatch_stddev
from ganinterface.models.stylegan2_layers import RESNET_GAIN, FullyConnectedLayer, MappingNetwork

Tensor = torch.Tensor
STANDARD_FILTER = (1, 3, 3, 1)


class Conv2dLayer(nn.Module):
    """NVlabs' ``Conv2dLayer``: equalised convolution, optional 2x down-sampling, bias, activation
    and clamp."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True,
                 activation: str = "linear", down: int = 1, conv_clamp: float | None = None,
                 resample_filter: Sequence[float] = STANDARD_FILTER):
        super().__init__()
        self.activation, self.down, self.conv_clamp = activation, down, conv_clamp
        self.register_buffer("resample_filter", ops.setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size ** 2)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        x = ops.conv2d_resample(x, w, f=self.resample_filter, down=self.down, padding=self.padding)
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return ops.bias_act(x, self.bias, act=self.activation,
                            gain=ops.ACTIVATIONS[self.activation].def_gain * gain, clamp=clamp)


class DiscriminatorBlock(nn.Module):
    """One resolution of the resnet D: (fromrgb for the first) conv0, conv1 (down) + skip (down)."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int,
                 conv_clamp: float | None, resample_filter: Sequence[float]):
        super().__init__()
        self.in_channels = in_channels
        self.register_buffer("resample_filter", ops.setup_filter(list(resample_filter)))
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2,
                                 conv_clamp=conv_clamp, resample_filter=resample_filter)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2,
                                resample_filter=resample_filter)

    def forward(self, x: Tensor | None, img: Tensor) -> Tensor:
        if self.in_channels == 0:
            x = self.fromrgb(img)
        y = self.skip(x, gain=RESNET_GAIN)
        x = self.conv1(self.conv0(x), gain=RESNET_GAIN)
        return y + x


class MinibatchStdLayer(nn.Module):
    def __init__(self, group_size: int | None, num_channels: int):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels  # group_size None: the batch

    def forward(self, x: Tensor) -> Tensor:
        return minibatch_stddev(x, self.group_size or len(x), self.num_channels)


class DiscriminatorEpilogue(nn.Module):
    """``b4``: minibatch std, conv, fc, out (projected onto ``cmap`` when conditional)."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, mbstd_group_size: int | None,
                 mbstd_num_channels: int, conv_clamp: float | None):
        super().__init__()
        self.cmap_dim = cmap_dim
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, 3, activation="lrelu",
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, cmap_dim or 1)

    def forward(self, x: Tensor, cmap: Tensor | None) -> Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.out(self.fc(self.conv(x).flatten(1)))
        if self.cmap_dim:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x


class StyleGAN2Discriminator(nn.Module):
    """Images (N, C, R, R) in [-1, 1] (and class labels) -> logits (N, 1)."""

    def __init__(self, img_resolution: int, channels: Mapping[int, int], *, img_channels: int = 3,
                 c_dim: int = 0, cmap_dim: int | None = None, conv_clamp: float | None = None,
                 mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1,
                 mapping_kwargs: Mapping[str, Any] | None = None,
                 resample_filter: Sequence[float] = STANDARD_FILTER):
        super().__init__()
        if img_resolution < 8 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two of at least 8, got {img_resolution}")
        self.img_resolution, self.img_channels, self.c_dim = img_resolution, img_channels, c_dim
        self.block_resolutions = [2 ** i for i in range(int(math.log2(img_resolution)), 2, -1)]
        for res in self.block_resolutions:
            in_channels = channels[res] if res < img_resolution else 0
            setattr(self, f"b{res}", DiscriminatorBlock(in_channels, channels[res], channels[res // 2],
                                                        img_channels, conv_clamp, resample_filter))
        cmap_dim = (channels[4] if cmap_dim is None else cmap_dim) if c_dim else 0
        if c_dim:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=1, w_avg_beta=None,
                                          **dict(mapping_kwargs or {}))
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim, 4, mbstd_group_size, mbstd_num_channels,
                                        conv_clamp)

    def features(self, images: Tensor) -> list[Tensor]:
        """Each block's output, finest first (each image on its own, unlike the epilogue)."""
        x, activations = None, []
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x, images)
            activations.append(x)
        return activations

    def forward(self, images: Tensor, c: Tensor | None = None) -> Tensor:
        cmap = self.mapping(None, c)[:, 0] if self.c_dim else None
        return self.b4(self.features(images)[-1], cmap)


def nvlabs_channels(img_resolution: int, channel_base: int, channel_max: int) -> dict[int, int]:
    """NVlabs' ``channels_dict``: resolution -> min(channel_base / resolution, channel_max)."""
    resolutions = [2 ** i for i in range(2, int(math.log2(img_resolution)) + 1)]
    return {res: min(channel_base // res, channel_max) for res in resolutions}


# NVlabs' constructor defaults, which differ between StyleGAN2-ADA's and StyleGAN3's code
NVLABS_DEFAULTS = {
    "training.networks": dict(channel_base=32768, channel_max=512, conv_clamp=None),
    "training.networks_stylegan2": dict(channel_base=32768, channel_max=512, conv_clamp=256),
}


def discriminator_from_kwargs(init_kwargs: Mapping[str, Any], source_module: str,
                              path: object) -> StyleGAN2Discriminator:
    """Our D from the constructor arguments NVlabs pickled with theirs (``source_module`` picks
    the defaults of arguments left out); a kind this program does not build is one line."""
    settings = {**NVLABS_DEFAULTS.get(source_module, NVLABS_DEFAULTS["training.networks_stylegan2"]),
                **init_kwargs}
    architecture = settings.get("architecture", "resnet")
    if architecture != "resnet":
        raise CheckpointError(path, f"its discriminator is a {architecture!r} one; this program builds "
                                    "only NVlabs' default, 'resnet'")
    epilogue = settings.get("epilogue_kwargs") or {}
    for group in ("block_kwargs", "epilogue_kwargs"):
        activation = (settings.get(group) or {}).get("activation", "lrelu")
        if activation != "lrelu":
            raise CheckpointError(path, f"its discriminator uses {activation!r} activations, not lrelu")
    try:
        resolution = int(settings["img_resolution"])
        channels = nvlabs_channels(resolution, int(settings["channel_base"]), int(settings["channel_max"]))
        return StyleGAN2Discriminator(
            resolution, channels, img_channels=int(settings.get("img_channels", 3)),
            c_dim=int(settings.get("c_dim", 0)), cmap_dim=settings.get("cmap_dim"),
            conv_clamp=settings.get("conv_clamp"), mbstd_group_size=epilogue.get("mbstd_group_size", 4),
            mbstd_num_channels=int(epilogue.get("mbstd_num_channels", 1)),
            mapping_kwargs=settings.get("mapping_kwargs"))
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as error:
        raise CheckpointError(path, f"cannot build its discriminator from the stored init_kwargs "
                                    f"({type(error).__name__}: {error})") from None
