"""A compact residual discriminator: trains the built-in portrait generator, and its features
measure how far a render is from a picture when projecting one (``engine.projection``).

Shaped like NVlabs' StyleGAN2 ``resnet`` discriminator, scaled down for a 2-core CPU: equalised
learning rate, leaky ReLU with gain sqrt(2), blocks that halve the resolution with a [1, 3, 3, 1]
low-pass filter before a strided convolution, residual 1x1 skips scaled by sqrt(0.5), then a
minibatch standard-deviation channel, a 3x3 convolution and two fully connected layers.  Works on
non-square images (the last block ends at 4 x (4 * width / height)).

Besides the real/fake logit it can predict ``aux_outputs`` extra logits (the renderer's labels);
training uses them only on real images, to make the discriminator attend to mouths and hair bands
early on.  A trained D is exported beside its generator (``discriminator_path``) and read back by
``load_discriminator``, which finds the channel widths from the stored shapes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganinterface.models.base import CheckpointError

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN


class EqualConv2d(nn.Module):
    """Conv with weights stored at unit variance and scaled by 1/sqrt(fan_in) at run time."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 bias: bool = True, downsample: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.downsample = downsample
        self.padding = kernel_size // 2
        # [1, 3, 3, 1] outer product, normalised to unit sum: the NVlabs resample filter.
        taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
        self.register_buffer("blur", (taps[:, None] * taps[None, :] / taps.sum() ** 2)[None, None],
                             persistent=False)

    def _lowpass(self, x: torch.Tensor) -> torch.Tensor:
        """Blur with "same" padding so that the stride-2 sampling after it does not alias."""
        channels = x.shape[1]
        kernel = self.blur.to(x.dtype).expand(channels, 1, 4, 4)
        return F.conv2d(F.pad(x, (2, 1, 2, 1)), kernel, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = (self.weight * self.weight_gain).to(x.dtype)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        if self.downsample:
            return F.conv2d(self._lowpass(x), weight, bias, stride=2, padding=self.padding)
        return F.conv2d(x, weight, bias, padding=self.padding)


class EqualLinear(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.weight_gain = 1.0 / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, (self.weight * self.weight_gain).to(x.dtype), self.bias.to(x.dtype))


class ResidualBlock(nn.Module):
    """conv3x3 -> lrelu -> blur + strided conv3x3 -> lrelu, plus a blurred 1x1 skip."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, downsample=True)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, downsample=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.skip(x) * math.sqrt(0.5)
        x = _lrelu(self.conv0(x))
        x = _lrelu(self.conv1(x)) * math.sqrt(0.5)
        return residual + x


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, num_channels: int = 1) -> torch.Tensor:
    """Append ``num_channels`` channels: the std over groups of samples, averaged over pixels and
    each of ``num_channels`` slices of the features (NVlabs' ``MinibatchStdLayer``; a batch that
    does not divide into groups is grouped by the largest common divisor)."""
    n, c, h, w = x.shape
    group = min(group_size, n)
    if n % group:
        group = math.gcd(n, group)
    y = x.float().reshape(group, -1, num_channels, c // num_channels, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0)
    y = (y + 1e-8).sqrt().mean(dim=(2, 3, 4))  # one value per group member index and slice
    y = y.reshape(-1, num_channels, 1, 1).repeat(group, 1, h, w)
    return torch.cat([x, y.to(x.dtype)], dim=1)


class ResidualDiscriminator(nn.Module):
    """Images (N, 3, H, W) in [-1, 1] -> (real/fake logits (N,), auxiliary logits (N, aux))."""

    def __init__(self, img_height: int = 128, img_width: int = 64, *, channel_base: int = 4096,
                 channel_max: int = 128, aux_outputs: int = 0, mbstd_group: int = 4):
        super().__init__()
        if img_height % 4 or img_height & (img_height - 1):
            raise ValueError(f"image height must be a power of two >= 4, got {img_height}")
        if (img_width * 4) % img_height:
            raise ValueError(f"image width {img_width} does not reduce to a whole 4-row grid")
        self.img_height = img_height
        self.img_width = img_width
        self.aux_outputs = aux_outputs
        self.mbstd_group = mbstd_group

        def channels(resolution: int) -> int:
            return min(channel_base // resolution, channel_max)

        self.from_rgb = EqualConv2d(3, channels(img_height), 1)
        blocks = []
        resolution = img_height
        while resolution > 4:
            blocks.append(ResidualBlock(channels(resolution), channels(resolution // 2)))
            resolution //= 2
        self.blocks = nn.ModuleList(blocks)
        final = channels(4)
        self.final_width = img_width * 4 // img_height
        self.final_conv = EqualConv2d(final + 1, final, 3)
        self.fc = EqualLinear(final * 4 * self.final_width, final)
        self.out = EqualLinear(final, 1 + aux_outputs)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.features(images)[-1]
        x = minibatch_stddev(x, self.mbstd_group)
        x = _lrelu(self.final_conv(x))
        x = _lrelu(self.fc(x.flatten(1)))
        out = self.out(x).float()
        return out[:, 0], out[:, 1:]

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The activations after ``from_rgb`` and after each block, finest first (each image on its
        own: nothing here mixes the batch, unlike the minibatch standard deviation after them)."""
        x = _lrelu(self.from_rgb(images))
        activations = [x]
        for block in self.blocks:
            x = block(x)
            activations.append(x)
        return activations


def discriminator_path(generator_path: str | os.PathLike[str]) -> Path:
    """``X.safetensors`` -> ``X.discriminator.safetensors``: the D exported with a generator."""
    path = Path(generator_path)
    return path.with_name(f"{path.stem}.discriminator.safetensors")


class OtherSizeError(CheckpointError):
    """The discriminator file was trained for images of another size than asked for."""


def load_discriminator(path: str | os.PathLike[str], img_height: int,
                       img_width: int) -> ResidualDiscriminator:
    """The D stored at ``path`` for images of ``img_height`` x ``img_width`` (eval mode, CPU).

    The file holds weights only; the channel widths are read from their shapes, so any
    ``channel_base``/``channel_max`` and number of auxiliary outputs load."""
    from safetensors.torch import load_file

    try:
        weights = load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(path, "no such discriminator file") from None
    except Exception as error:  # safetensors raises its own error types for every kind of damage
        raise CheckpointError(path, f"not a readable safetensors file ({_first_line(error)})") from None
    try:
        stored = _image_size(weights)
    except (KeyError, IndexError, ZeroDivisionError):
        raise CheckpointError(path, "not a residual discriminator (its layers are not all there)") from None
    if stored != (img_height, img_width):
        raise OtherSizeError(path, f"a discriminator for {stored[1]} × {stored[0]} px images, "
                                   f"not {img_width} × {img_height} px")
    try:
        base, most, aux = _widths(weights, img_height)
        discriminator = ResidualDiscriminator(img_height, img_width, channel_base=base,
                                              channel_max=most, aux_outputs=aux)
        discriminator.load_state_dict(weights, strict=True)
    except (KeyError, ValueError, RuntimeError) as error:
        raise CheckpointError(path, f"not a residual discriminator for {img_width} × {img_height} px "
                                    f"images ({_first_line(error)})") from None
    return discriminator.eval().requires_grad_(False)


def _image_size(weights: dict[str, torch.Tensor]) -> tuple[int, int]:
    """(height, width) of the images the stored D reads: a block per halving down to 4 rows, and
    the fully connected layer reads final channels x 4 rows x (4 * width / height) columns."""
    blocks = sum(1 for key in weights if key.startswith("blocks.") and key.endswith(".conv1.weight"))
    height = 4 * 2 ** blocks
    final = weights["fc.weight"].shape[0]
    final_width = weights["fc.weight"].shape[1] // (final * 4)
    return height, final_width * height // 4


def _widths(weights: dict[str, torch.Tensor], img_height: int) -> tuple[int, int, int]:
    """(channel_base, channel_max, aux_outputs) that rebuild the stored shapes."""
    widths = {img_height: weights["from_rgb.weight"].shape[0]}
    resolution, index = img_height, 0
    while f"blocks.{index}.conv1.weight" in weights:
        resolution //= 2
        widths[resolution] = weights[f"blocks.{index}.conv1.weight"].shape[0]
        index += 1
    most = max(widths.values())
    below = [width * res for res, width in widths.items() if width < most]
    base = max(below) if below else most * img_height
    return base, most, weights["out.weight"].shape[0] - 1


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
