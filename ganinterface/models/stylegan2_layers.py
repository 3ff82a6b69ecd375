"""StyleGAN2's building blocks with NVlabs' numerics and state-dict names: the mapping network,
the modulated synthesis layers (with an inference path that folds gains and runs a batch sample by
sample on the CPU), ToRGB, the resnet skip and the blocks that hold them.  ``models.stylegan2``
assembles them into a generator run layer by layer; StyleGAN3 and the discriminators reuse the
fully connected and mapping layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganinterface.models import ops
from ganinterface.models.base import per_sample, with_offset

Tensor = torch.Tensor

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
