"""StyleGAN2 generator with NVlabs' numerics and state-dict names, run layer by layer.

Module names and parameter layout follow NVlabs ``training/networks_stylegan2.py`` (stylegan3 and
stylegan2-ada-pytorch repositories), so ``load_state_dict(nvlabs_generator.state_dict())`` works
with ``strict=True``.  Synthesis is exposed as a flat list of layers (``b4.conv1``, ``b4.torgb``,
``b8.conv0``, ...) so that a render can resume from any layer (see ``GeneratorBase``).

ganinterface extras: ``img_width`` for non-square images (the 4-pixel-high constant input gets the
same aspect ratio; blocks are still named by height) and ``channels`` to give the channel count of
every block explicitly.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganinterface.models import limits, ops
from ganinterface.models.base import (
    GeneratorBase,
    LayerHook,
    LayerInfo,
    LayerState,
    SynthesisOutput,
    layer_noise_generator,
    per_sample,
    runs_on,
    with_offset,
)

Tensor = torch.Tensor

ARCHITECTURES = ("orig", "skip", "resnet")
# NVlabs kwargs that only choose CUDA/fp16 execution strategies; they never change float32 results.
IGNORED_SYNTHESIS_KWARGS = frozenset({"num_fp16_res", "fp16_channels_last", "fused_modconv_default", "channels_last"})
RESNET_GAIN = math.sqrt(0.5)
# act(x) * g == act(x * g) for g > 0: their gain can be folded into the weights at inference.
HOMOGENEOUS_ACTIVATIONS = frozenset({"lrelu", "relu", "linear"})


def cached_derivative(owner: nn.Module, name: str, source: Tensor, make: Callable[[Tensor], Tensor]) -> Tensor:
    """``make(source)``, kept on ``owner`` until ``source`` is modified, moved or re-typed.

    Inference only: the cached tensor carries no autograd history.
    """
    key = (source.data_ptr(), source._version, source.dtype, source.device)
    cache = owner.__dict__.setdefault("_derived_cache", {})
    if name not in cache or cache[name][0] != key:
        with torch.no_grad():
            cache[name] = (key, make(source.detach()))
    return cache[name][1]


def affine_styles(affine: nn.Module, w: Tensor, runs: int) -> Tensor:
    """A layer's styles ``affine(w)`` in ``runs`` (``models.base.per_sample``): one per sample
    where each sample's convolution runs alone, so that its styles are those of its render alone."""
    return per_sample(lambda i: affine(w[i]), runs)


def _memory_format(x: Tensor) -> torch.memory_format:
    if x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


# ---- building blocks (names mirror NVlabs so state-dict keys match) ------------------------------
class FullyConnectedLayer(nn.Module):
    """Equalised-learning-rate linear layer: weights stored / lr_multiplier, scaled at run time."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], np.float32(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled():
            w = self.weight.to(x.dtype) * self.weight_gain
        else:  # inference: reuse the scaled weight until the parameter changes
            w = cached_derivative(self, "scaled", self.weight, lambda v: v * self.weight_gain).to(x.dtype)
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return ops.bias_act(x.matmul(w.t()), b, act=self.activation)


class MappingNetwork(nn.Module):
    """z (and class label c) -> w, broadcast to num_ws rows; tracks w_avg for truncation."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 8,
                 embed_features: int | None = None, layer_features: int | None = None,
                 activation: str = "lrelu", lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.998):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation=activation,
                                        lr_multiplier=lr_multiplier)
            setattr(self, f"fc{idx}", layer)
        if w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: Tensor | None, c: Tensor | None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_emas: bool = False) -> Tensor:
        x = None
        if self.z_dim > 0:
            x = ops.normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            y = ops.normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas and self.w_avg_beta is not None:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            if self.w_avg_beta is None:
                raise ValueError("truncation needs w_avg, but this mapping network does not track it")
            if truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                head = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
                x = torch.cat([head, x[:, truncation_cutoff:]], dim=1)
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally 2x up-sampling) + noise + bias + lrelu."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, size: tuple[int, int],
                 kernel_size: int = 3, up: int = 1, use_noise: bool = True, activation: str = "lrelu",
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: float | None = None):
        super().__init__()
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.size = size
        self.register_buffer("resample_filter", ops.setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.act_gain = ops.ACTIVATIONS[activation].def_gain
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(list(size)))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def noise(self, batch: int, mode: str, generator: torch.Generator | None, device: torch.device,
              const: Tensor | None = None) -> Tensor | None:
        """The noise this layer adds; ``const`` replaces the stored map in mode "const"."""
        if not self.use_noise or mode == "none":
            return None
        if mode == "const":
            return (self.noise_const if const is None else const) * self.noise_strength
        noise = torch.randn([batch, 1, *self.size], generator=generator, device=generator.device)
        return noise.to(device) * self.noise_strength

    def forward(self, x: Tensor, w: Tensor, noise: Tensor | None, fused_modconv: bool, gain: float = 1,
                style_offset: Tensor | None = None) -> Tensor:
        styles = with_offset(affine_styles(self.affine, w, w.shape[0] if fused_modconv else 1), style_offset)
        if not torch.is_grad_enabled() and self.activation in HOMOGENEOUS_ACTIVATIONS:
            return self._forward_inference(x, styles, noise, fused_modconv, gain)
        weight, energy = self.weight, None
        # Frozen weights (projection): their cast and energy made once, not each step.  Not for
        # float16, whose pre-normalisation of the weight comes first.
        if not fused_modconv and not self.weight.requires_grad and x.dtype != torch.float16:
            weight = self._cached(f"as-{x.dtype}", lambda weight: weight.to(x.dtype))
            energy = self._energy()
        x = ops.modulated_conv2d(x, weight, styles, noise=noise, up=self.up, padding=self.padding,
                                 resample_filter=self.resample_filter, flip_weight=(self.up == 1),
                                 fused_modconv=fused_modconv, energy=energy)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return ops.bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def _cached(self, name: str, make: Callable[[Tensor], Tensor]) -> Tensor:
        return cached_derivative(self, name, self.weight, make)

    def _energy(self) -> Tensor:
        """(O, I): the weight's squares summed over its taps, what demodulation needs of it."""
        return self._cached("energy", lambda weight: weight.square().sum(dim=[2, 3]))

    def _forward_inference(self, x: Tensor, styles: Tensor, noise: Tensor | None, fused: bool, gain: float) -> Tensor:
        """Same result as ``forward`` with fewer passes over memory (no autograd needed).

        The activation gain is folded into the demodulation coefficients, the bias and the noise
        (lrelu(a) * g == lrelu(a * g) for g > 0), the bias is added inside the last convolution,
        and the remaining element-wise steps run in place on the fresh output.
        """
        batch, dtype = x.shape[0], x.dtype
        g = self.act_gain * gain
        energy = self._energy()
        bias = self.bias * g
        common = dict(f=self.resample_filter, up=self.up, padding=self.padding, flip_weight=(self.up == 1))
        if fused:  # each sample alone: its sums are those of its render alone, whatever the batch
            memory_format = _memory_format(x)

            def convolved(i: slice) -> Tensor:
                dcoefs = (styles[i].square() @ energy.t() + 1e-8).rsqrt() * g  # (1, O)
                weight = self._modulated_weight(styles[i][0], dcoefs[0], memory_format)
                return ops.conv2d_resample(x[i], weight.to(dtype), bias=bias.to(dtype), **common)

            y = per_sample(convolved, batch)
        else:
            dcoefs = (styles.square() @ energy.t() + 1e-8).rsqrt() * g  # (N, O)
            y = ops.conv2d_resample(x * styles.to(dtype)[..., None, None], self.weight.to(dtype), **common)
            y = torch.addcmul(bias.to(dtype)[None, :, None, None], y, dcoefs.to(dtype)[..., None, None])
        if dtype != torch.float32 and y.device.type == "cpu":
            return self._finish_reduced(y, noise, g, gain)
        if noise is not None:
            y.add_((noise * g).to(dtype))
        if self.activation == "lrelu":
            F.leaky_relu_(y, ops.ACTIVATIONS["lrelu"].def_alpha)
        elif self.activation == "relu":
            y.relu_()
        if self.conv_clamp is not None:
            y.clamp_(-self.conv_clamp * gain, self.conv_clamp * gain)
        return y

    def _finish_reduced(self, y: Tensor, noise: Tensor | None, g: float, gain: float) -> Tensor:
        """Noise, activation and clamp as ``_forward_inference`` applies them, for a reduced
        precision on the CPU: each step writes into the other of two buffers, because torch's
        in-place kernels for bfloat16 run several times slower than the same kernels writing
        elsewhere (a 32-channel 1024 x 1024 layer on one thread: 108 ms in place, 48 ms so)."""
        spare = torch.empty_like(y)
        steps = []
        if noise is not None:
            steps.append(lambda x, out: torch.add(x, (noise * g).to(x.dtype), out=out))
        if self.activation == "lrelu":
            steps.append(lambda x, out: torch.ops.aten.leaky_relu.out(x, ops.ACTIVATIONS["lrelu"].def_alpha, out=out))
        elif self.activation == "relu":
            steps.append(lambda x, out: torch.clamp(x, min=0, out=out))
        if self.conv_clamp is not None:
            bound = self.conv_clamp * gain
            steps.append(lambda x, out: torch.clamp(x, -bound, bound, out=out))
        for step in steps:
            step(y, spare)
            y, spare = spare, y
        return y

    def _modulated_weight(self, style: Tensor, dcoef: Tensor, memory_format: torch.memory_format) -> Tensor:
        """weight[o, i] * style[i] * dcoef[o] for one sample, (O, I, k, k), in the activations'
        memory format (else the convolution copies it).

        For up-sampling layers it is built in the (I, O, k, k) layout conv_transpose2d reads and
        returned as a transposed view, so again no copy of the weight is made on the way.
        """
        if self.up == 1:
            weight = self._cached(f"plain-{memory_format}", lambda w: w.contiguous(memory_format=memory_format))
            return weight * (dcoef[:, None] * style[None, :])[..., None, None]
        transposed = self._cached(f"transposed-{memory_format}",
                                  lambda w: w.transpose(0, 1).contiguous(memory_format=memory_format))
        return (transposed * (style[:, None] * dcoef[None, :])[..., None, None]).transpose(0, 1)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to image channels, no demodulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size**2)

    def forward(self, x: Tensor, w: Tensor, fused_modconv: bool, style_offset: Tensor | None = None) -> Tensor:
        runs = w.shape[0] if fused_modconv else 1
        styles = with_offset(affine_styles(self.affine, w, runs), style_offset) * self.weight_gain
        if torch.is_grad_enabled() or self.weight.shape[2:] != (1, 1):
            x = ops.modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
            return ops.bias_act(x, self.bias, clamp=self.conv_clamp)
        # Inference: the 1x1 convolution as one product per sample of its pixels (N, H * W, I) and
        # its modulated weight (N, I, O), bias included; torch's convolution takes a slow path for
        # so few output channels.  The result is a channels_last view when x is channels_last.
        batch, channels, height, width = x.shape
        dtype = x.dtype
        weights = (self.weight[None, :, :, 0, 0] * styles[:, None, :]).to(dtype).transpose(1, 2)
        pixels = x.permute(0, 2, 3, 1).reshape(batch, height * width, channels)
        y = torch.baddbmm(self.bias.to(dtype)[None, None, :], pixels, weights)
        y = y.reshape(batch, height, width, -1).permute(0, 3, 1, 2)
        return y.clamp_(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else y


class Conv2dLayer(nn.Module):
    """Plain equalised 1x1 convolution with 2x up-sampling: the residual path of a resnet block."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, up: int = 2,
                 resample_filter: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        self.up = up
        self.register_buffer("resample_filter", ops.setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size**2)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))

    def forward(self, x: Tensor, gain: float = 1) -> Tensor:
        if torch.is_grad_enabled():
            w = (self.weight * self.weight_gain).to(x.dtype)
            x = ops.conv2d_resample(x, w, f=self.resample_filter, up=self.up, padding=self.padding,
                                    flip_weight=(self.up == 1))
            return ops.bias_act(x, None, gain=gain)
        w = (self.weight * (self.weight_gain * gain)).to(x.dtype)  # inference: gain folded into the weight
        return ops.conv2d_resample(x, w, f=self.resample_filter, up=self.up, padding=self.padding,
                                   flip_weight=(self.up == 1))


class SynthesisBlock(nn.Module):
    """One resolution: (const | conv0 up-sampling) + conv1 (+ torgb, + resnet skip)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, size: tuple[int, int],
                 img_channels: int, is_last: bool, architecture: str,
                 resample_filter: Sequence[float], conv_clamp: float | None, layer_kwargs: dict[str, Any]):
        super().__init__()
        self.in_channels = in_channels
        self.register_buffer("resample_filter", ops.setup_filter(list(resample_filter)))
        common = dict(w_dim=w_dim, size=size, resample_filter=resample_filter, conv_clamp=conv_clamp, **layer_kwargs)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, *size]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, **common)
        self.conv1 = SynthesisLayer(out_channels, out_channels, **common)
        self.has_torgb = is_last or architecture == "skip"
        if self.has_torgb:
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, up=2, resample_filter=resample_filter)


class SynthesisNetwork(nn.Module):
    """Container of the blocks ``b4 .. b{H}``; the generator runs them layer by layer."""

    def __init__(self, blocks: dict[int, SynthesisBlock]):
        super().__init__()
        for height, block in blocks.items():
            setattr(self, f"b{height}", block)


# ---- configuration ---------------------------------------------------------------------------------
# In a reduced precision the first blocks still run in float32 while they hold at most this share
# of the convolutions' work: every later layer amplifies their rounding.  At 1024 px (paper config,
# random weights, 5 seeds) bfloat16 drafts with the blocks up to 32 px in float32 differ from the
# exact image by at most 0.017 instead of 0.027, for 5.5% of the work.
FLOAT32_LEADING_WORK = 1 / 16

@dataclasses.dataclass(frozen=True)
class _Step:
    """How to run one entry of ``generator.layers``."""

    block: int  # block height
    role: str  # "conv0", "conv1", "torgb"
    w_index: int


def _leading_blocks(blocks: dict[int, SynthesisBlock], share: float) -> frozenset[int]:
    """The first blocks (by height) whose 3x3 convolutions together do at most ``share`` of the
    whole synthesis' multiply-adds."""
    def work(height: int) -> int:
        block = blocks[height]
        area = height * block.conv1.size[1]
        out = block.conv1.weight.shape[0]
        return out * out * area + block.in_channels * out * area // 4  # conv1, then conv0 (up)

    total = sum(map(work, blocks))
    leading, running = set(), 0
    for height in sorted(blocks):
        running += work(height)
        if running > share * total:
            break
        leading.add(height)
    return frozenset(leading)


def _block_channels(heights: list[int], channel_base: int, channel_max: int,
                    channels: Mapping[Any, int] | None) -> dict[int, int]:
    if channels is None:
        channel_base = limits.whole("channel_base", channel_base, high=limits.MAX_VALUES)
        channel_max = limits.whole("channel_max", channel_max)
        table = {h: min(channel_base // h, channel_max) for h in heights}
    elif isinstance(channels, Mapping):
        table = {int(k): int(v) for k, v in channels.items()}
    else:
        raise ValueError(f"channels must map block heights to channel counts, got {type(channels).__name__}")
    missing = [h for h in heights if h not in table]
    if missing:
        raise ValueError(f"channels table has no entry for block heights {missing}")
    return {h: limits.whole(f"channels of block {h}", table[h]) for h in heights}


def _mapping_sizes(mapping_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The mapping network's size arguments, with ``MappingNetwork``'s defaults."""
    kwargs = dict(mapping_kwargs or {})
    return dict(num_layers=kwargs.get("num_layers", 8), embed_features=kwargs.get("embed_features"),
                layer_features=kwargs.get("layer_features"))


def _stored_values(heights: list[int], aspect: float, block_channels: dict[int, int], w_dim: int,
                   img_channels: int, options: SynthesisOptions) -> int:
    """Parameters and buffers the synthesis network will hold (resampling filters aside)."""
    kernel = limits.whole("kernel_size", options.kernel_size, high=limits.MAX_KERNEL)

    def conv(in_channels: int, out_channels: int, area: int, size: int = kernel) -> int:
        return in_channels * out_channels * size * size + (w_dim + 1) * in_channels + out_channels + area

    total = 0
    for h in heights:
        area, out = h * max(1, int(h * aspect)), block_channels[h]
        if h == 4:
            total += out * area + conv(out, out, area)
        else:
            total += conv(block_channels[h // 2], out, area) + conv(out, out, area)
            total += block_channels[h // 2] * out if options.architecture == "resnet" else 0
        total += conv(out, img_channels, 0, size=1)
    return total


@dataclasses.dataclass(frozen=True)
class SynthesisOptions:
    """The NVlabs synthesis keyword arguments that change results (defaults: stylegan3 repository)."""

    channel_base: int = 32768  # channels of a block = min(channel_base // height, channel_max)
    channel_max: int = 512
    architecture: str = "skip"  # "orig", "skip" or "resnet"
    resample_filter: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)  # FIR taps for 2x up-sampling
    conv_clamp: float | None = 256  # clamp conv outputs to +-conv_clamp (None: no clamp)
    use_noise: bool = True
    kernel_size: int = 3
    activation: str = "lrelu"
    resize: int | None = None  # forks (DragGAN): the final image resized to resize x resize

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> SynthesisOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - known - IGNORED_SYNTHESIS_KWARGS)
        if unknown:
            raise TypeError(f"StyleGAN2Generator: unsupported synthesis argument(s) {', '.join(unknown)}")
        values = {k: v for k, v in kwargs.items() if k in known}
        if "resample_filter" in values:
            values["resample_filter"] = tuple(float(t) for t in values["resample_filter"])
        options = cls(**values)
        if options.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {options.architecture!r}")
        if options.activation not in ops.ACTIVATIONS:
            raise ValueError(f"unknown activation {options.activation!r}")
        if options.resize is not None:
            limits.resolution("resize", options.resize)
        return options


# ---- the generator ---------------------------------------------------------------------------------
class StyleGAN2Generator(GeneratorBase):
    """NVlabs StyleGAN2 ``Generator`` (init kwargs verbatim) with the ganinterface layer API."""

    architecture = "stylegan2"

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: Mapping[str, Any] | None = None,
        synthesis_kwargs: Mapping[str, Any] | None = None,
        img_width: int | None = None,
        channels: Mapping[Any, int] | None = None,
        **more_synthesis_kwargs: Any,
    ):
        """NVlabs ``Generator`` arguments: stylegan3-repo style (synthesis options as keywords) or
        stylegan2-ada style (``synthesis_kwargs={...}``); see ``SynthesisOptions`` for the options."""
        options = SynthesisOptions.from_kwargs({**(synthesis_kwargs or {}), **more_synthesis_kwargs})
        z_dim, c_dim = limits.whole("z_dim", z_dim, low=0), limits.whole("c_dim", c_dim, low=0)
        w_dim, img_channels = limits.whole("w_dim", w_dim), limits.whole("img_channels", img_channels)
        img_resolution = limits.resolution("img_resolution", img_resolution)
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        width = img_resolution if img_width is None else limits.resolution("img_width", img_width)
        if (4 * width) % img_resolution:
            raise ValueError(
                f"img_width {width} must make the 4-pixel-high input a whole number of pixels wide "
                f"(4 * width divisible by height {img_resolution})")

        heights = [2**i for i in range(2, int(np.log2(img_resolution)) + 1)]
        block_channels = _block_channels(heights, options.channel_base, options.channel_max, channels)
        limits.check_values("this StyleGAN2 generator", _stored_values(
            heights, width / img_resolution, block_channels, w_dim, img_channels, options)
            + limits.mapping_values(z_dim, c_dim, w_dim, **_mapping_sizes(mapping_kwargs)))
        super().__init__()  # only now: nothing is allocated for a configuration refused above

        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis_size = (img_resolution, width)  # of the last layers; the image's unless resized
        self.img_height, self.img_width = self.synthesis_size if options.resize is None else (options.resize,) * 2
        self.options = options
        self.fused_modconv: bool | str = "auto"  # True / False / "auto" (fused for one-sample inference)
        self.memory_format = torch.channels_last  # of the activations (faster convs on CPU); images are NCHW
        self._config = dict(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            mapping_kwargs=dict(mapping_kwargs or {}), **dataclasses.asdict(options), img_width=img_width,
            channels=None if channels is None else {str(k): int(v) for k, v in channels.items()},
        )
        self._config["resample_filter"] = list(options.resample_filter)
        architecture, resample_filter, conv_clamp = options.architecture, options.resample_filter, options.conv_clamp
        use_noise, kernel_size, activation = options.use_noise, options.kernel_size, options.activation

        layer_kwargs = dict(use_noise=use_noise, kernel_size=kernel_size, activation=activation)
        blocks: dict[int, SynthesisBlock] = {}
        for h in heights:
            blocks[h] = SynthesisBlock(
                in_channels=block_channels[h // 2] if h > 4 else 0, out_channels=block_channels[h],
                w_dim=w_dim, size=(h, h * width // img_resolution), img_channels=img_channels,
                is_last=(h == img_resolution), architecture=architecture,
                resample_filter=resample_filter, conv_clamp=conv_clamp, layer_kwargs=layer_kwargs)
        self.synthesis = SynthesisNetwork(blocks)
        self._steps, self.layers, self.num_ws = self._plan(heights, blocks, block_channels)
        self._float32_blocks = _leading_blocks(blocks, FLOAT32_LEADING_WORK)
        # Registered under the NVlabs name "mapping" (state-dict keys mapping.*); the attribute
        # `mapping` stays the GeneratorBase method, so reach the module through `mapping_network`.
        self._modules["mapping"] = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, **(mapping_kwargs or {}))
        self.eval()

    def _plan(self, heights, blocks, block_channels) -> tuple[list[_Step], list[LayerInfo], int]:
        steps, layers = [], []
        w_idx = 0
        for h in heights:
            block = blocks[h]
            size = (h, h * self.synthesis_size[1] // self.synthesis_size[0])
            roles = ["conv1"] if block.in_channels == 0 else ["conv0", "conv1"]
            for i, role in enumerate(roles):
                steps.append(_Step(h, role, w_idx + i))
                layers.append(LayerInfo(f"b{h}.{role}", block_channels[h], *size, (w_idx + i,), "conv"))
            if block.has_torgb:
                steps.append(_Step(h, "torgb", w_idx + len(roles)))
                layers.append(LayerInfo(f"b{h}.torgb", self.img_channels, *size, (w_idx + len(roles),), "torgb"))
            w_idx += len(roles)
        return steps, layers, w_idx + 1

    # ---- GeneratorBase -----------------------------------------------------------------------
    @property
    def mapping_network(self) -> MappingNetwork:
        return self._modules["mapping"]

    @property
    def w_avg(self) -> Tensor:
        net = self.mapping_network
        return net.w_avg if net.w_avg_beta is not None else torch.zeros(self.w_dim)

    def mapping(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_emas: bool = False) -> Tensor:
        if self.c_dim > 0 and c is None:
            raise ValueError(f"this generator is conditional: pass c with {self.c_dim} columns")
        with torch.autocast(device_type=z.device.type, enabled=False):
            return self.mapping_network(z, c, truncation_psi=truncation_psi,
                                        truncation_cutoff=truncation_cutoff, update_emas=update_emas)

    def config(self) -> dict[str, Any]:
        return copy.deepcopy(self._config)

    def synthesize(
        self,
        ws: Tensor,
        *,
        start: int = 0,
        state: LayerState | None = None,
        stop: int | None = None,
        taps: Collection[str] = (),
        hooks: Mapping[str, LayerHook] | None = None,
        keep_states: Collection[int] = (),
        noise_mode: str = "const",
        noise_seed: int = 0,
        noise_maps: Mapping[str, Tensor] | None = None,
        compute_dtype: torch.dtype = torch.float32,
        style_offsets: Mapping[str, Tensor] | None = None,
    ) -> SynthesisOutput:
        n_layers = len(self.layers)
        stop = n_layers if stop is None else stop
        hooks = hooks or {}
        self._check_synthesis_args(ws, start, state, stop, noise_mode, [*taps, *hooks], compute_dtype)
        noise_maps = noise_maps or {}
        self._check_noise_maps(noise_maps)
        style_offsets = style_offsets or {}
        self._check_style_offsets(style_offsets, ws.shape[0])
        taps = set(taps)
        ws = ws.to(torch.float32)
        fused = self._use_fused(ws)
        current: LayerState = dict(state) if start > 0 else {}
        kept: dict[int, LayerState] = {}
        tapped: dict[str, Tensor] = {}
        for k in range(start, stop):
            if k in keep_states:
                kept[k] = dict(current)
            info = self.layers[k]
            current, activation = self._run_step(k, current, ws, fused, noise_mode, noise_seed,
                                                 hooks.get(info.name), noise_maps.get(info.name), compute_dtype,
                                                 style_offsets.get(info.name))
            if info.name in taps:
                tapped[info.name] = activation
        if stop in keep_states:
            kept[stop] = dict(current)
        image = current["img"] if stop == n_layers else torch.empty(0)
        if stop == n_layers and self.options.resize is not None:
            image = ops.resize_square(image, self.options.resize)
        return SynthesisOutput(image=image, taps=tapped, states=kept)

    def style_sizes(self) -> dict[str, int]:
        sizes = {}
        for step, info in zip(self._steps, self.layers):
            layer = getattr(getattr(self.synthesis, f"b{step.block}"), step.role)
            sizes[info.name] = layer.affine.weight.shape[0]
        return sizes

    # ---- internals ---------------------------------------------------------------------------
    def stored_noise(self) -> dict[str, Tensor]:
        stored = {}
        for k, info in enumerate(self.layers):
            step = self._steps[k]
            layer = getattr(getattr(self.synthesis, f"b{step.block}"), step.role)
            if step.role != "torgb" and layer.use_noise:
                stored[info.name] = layer.noise_const
        return stored

    @property
    def fast_dtypes(self) -> tuple[torch.dtype, ...]:
        """bfloat16 always; float16 (5 fewer exponent bits) only where conv_clamp bounds the
        activations, as NVlabs requires for its fp16 layers."""
        if self.options.conv_clamp is None:
            return (torch.bfloat16,)
        return (torch.bfloat16, torch.float16)

    def _use_fused(self, ws: Tensor) -> bool:
        """"auto": modulated weights per sample for one sample, and for a batch that runs sample
        by sample (``models.base``, *Batches*: then its images are the bytes of single renders);
        any other batch shares the plain weight (one convolution for the batch, faster on a GPU).
        So does a pass whose gradients reach the latents (projection): per-sample weights would
        need their own gradient, the shared weight needs none (a third less time a step)."""
        if self.fused_modconv == "auto":
            to_latents = torch.is_grad_enabled() and ws.requires_grad
            return not self.training and not to_latents and runs_on(ws) == ws.shape[0]
        return bool(self.fused_modconv)

    def _run_step(self, k: int, state: LayerState, ws: Tensor, fused: bool, noise_mode: str,
                  noise_seed: int, hook: LayerHook | None,
                  noise_map: Tensor | None, compute_dtype: torch.dtype,
                  style_offset: Tensor | None) -> tuple[LayerState, Tensor]:
        step = self._steps[k]
        block: SynthesisBlock = getattr(self.synthesis, f"b{step.block}")
        w = ws[:, step.w_index]
        state = dict(state)
        if step.role == "torgb":  # in its input's precision: after an exact state, exact
            y = block.torgb(state["x"], w, fused_modconv=fused, style_offset=style_offset).to(torch.float32, memory_format=torch.contiguous_format)
            if hook is not None:
                y = hook(y)
            img = state.get("img")
            state["img"] = y if img is None else img + y
            return state, y

        layer: SynthesisLayer = getattr(block, step.role)
        if step.block in self._float32_blocks:
            compute_dtype = torch.float32
        generator = layer_noise_generator(noise_seed, k) if noise_mode == "random" else None
        noise = layer.noise(ws.shape[0], noise_mode, generator, ws.device, noise_map)
        resnet = hasattr(block, "skip")
        if step.role == "conv1" and block.in_channels == 0:
            x = block.const.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = x.to(compute_dtype).contiguous(memory_format=self.memory_format)
            x = layer(x, w, noise, fused, style_offset=style_offset)
        elif step.role == "conv0":
            if "img" in state:  # up-sampled as the block starts, so a re-render from conv1 on skips it
                state["img"] = ops.upsample2d(state["img"], block.resample_filter)
            x_in = state["x"].to(compute_dtype)
            if resnet:
                state["residual"] = block.skip(x_in, gain=RESNET_GAIN)
            x = layer(x_in, w, noise, fused, style_offset=style_offset)
        elif resnet:
            x = layer(state["x"].to(compute_dtype), w, noise, fused, gain=RESNET_GAIN, style_offset=style_offset)
            x = state.pop("residual").to(compute_dtype) + x
        else:
            x = layer(state["x"].to(compute_dtype), w, noise, fused, style_offset=style_offset)
        if hook is not None:
            x = hook(x)
        state["x"] = x
        return state, x
