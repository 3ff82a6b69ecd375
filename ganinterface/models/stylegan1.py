"""StyleGAN (v1) generator with the original's numerics, run layer by layer.

Follows NVlabs' TensorFlow release (``training/networks_stylegan.py`` of the ``stylegan``
repository):

* mapping (``G_mapping``): an optional label embedding concatenated to z, pixel norm, then
  equalised dense layers (8 by default) with a learning-rate multiplier of 0.01 and leaky ReLU;
* synthesis (``G_synthesis``): a learned 4x4 constant, then per resolution an up-sampling 3x3
  convolution followed by the [1, 2, 1] blur and a plain 3x3 convolution; every layer ends in the
  same *epilogue*: per-pixel noise times a per-channel weight, bias, leaky ReLU, (pixel norm),
  instance norm, and the style modulation (AdaIN) ``x * (scale + 1) + shift`` from a dense layer of
  its own w.  One ToRGB (1x1 convolution, no style) at the final resolution;
* up-sampling is nearest-neighbour followed by the convolution, or, from 128 pixels on
  (``fused_scale="auto"``), one transposed convolution with the kernel summed over its four 2x2
  shifts, exactly as the original computes it;
* gains live in the weights (equalised learning rate, He gain sqrt(2) before leaky ReLU), not after
  the activation as in StyleGAN2;
* truncation towards ``w_avg`` (the original's ``dlatent_avg``) on the first ``truncation_cutoff``
  w rows, 8 by default as in ``G_style``.

Layers: ``b4.const`` (the constant through its epilogue), ``b4.conv``, ``b8.conv0``, ``b8.conv1``,
..., ``b{H}.torgb``; layer k reads ws row k (ToRGB reads none).  Weights are stored in PyTorch
layout; ``tf_stylegan1`` maps the TensorFlow variables onto them.  ganinterface extras:
``img_width`` for non-square images (the constant gets the image's aspect ratio; blocks are named
by height) and ``channels`` to give every block's channel count explicitly.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

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
)

Tensor = torch.Tensor

ACTIVATIONS = {"lrelu": lambda x: F.leaky_relu(x, 0.2), "relu": F.relu}
HE_GAIN = math.sqrt(2)  # weight gain of every layer followed by (leaky) ReLU
FUSED_SCALE_FROM = 128  # fused_scale="auto": fused up-sampling when the output's smaller side reaches this
KERNEL = 3  # every synthesis convolution is 3x3


# ---- operations -----------------------------------------------------------------------------------
def runtime_gain(fan_in: int, gain: float, use_wscale: bool, lr_multiplier: float = 1.0) -> float:
    """What the original multiplies a stored weight by at run time (``get_weight``): with the
    equalised learning rate the He constant ``gain / sqrt(fan_in)`` times the lr multiplier."""
    return gain / math.sqrt(fan_in) * lr_multiplier if use_wscale else lr_multiplier


def initial_weight(shape: list[int], fan_in: int, gain: float, use_wscale: bool,
                   lr_multiplier: float = 1.0) -> nn.Parameter:
    """A fresh stored weight, drawn as ``get_weight`` draws it (so that times ``runtime_gain`` it
    has the He standard deviation)."""
    std = 1 / lr_multiplier if use_wscale else gain / math.sqrt(fan_in) / lr_multiplier
    return nn.Parameter(torch.randn(shape) * std)


def pixel_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Scale every pixel's feature vector (dim 1) to unit mean square."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def instance_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Zero mean and unit mean square over the pixels of each sample's each channel."""
    x = x - x.mean(dim=[2, 3], keepdim=True)
    return x * torch.rsqrt(x.square().mean(dim=[2, 3], keepdim=True) + eps)


def blur_kernel(taps: Sequence[float]) -> Tensor:
    """The normalised 2-D blur filter of the 1-D ``taps`` (their outer product)."""
    return ops.setup_filter(list(taps), separable=False)


def blur2d(x: Tensor, kernel: Tensor) -> Tensor:
    """Depthwise filtering keeping the size, zero padding as TensorFlow's "SAME"."""
    return ops.filter2d(x, kernel)


def upscale2d(x: Tensor) -> Tensor:
    """Nearest-neighbour 2x up-sampling (each pixel becomes a 2x2 square)."""
    return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)


def fused_upscale_kernel(weight: Tensor) -> Tensor:
    """[O, I, k, k] conv weight -> the [I, O, k+1, k+1] transposed-conv kernel of the original's
    fused up-sampling: the kernel zero-padded by one and summed over its four 2x2 shifts."""
    padded = F.pad(weight.transpose(0, 1), [1, 1, 1, 1])
    return padded[:, :, 1:, 1:] + padded[:, :, :-1, 1:] + padded[:, :, 1:, :-1] + padded[:, :, :-1, :-1]


def upscale2d_conv2d(x: Tensor, weight: Tensor, fused: bool) -> Tensor:
    """2x up-sampling and a "SAME" convolution with ``weight`` (already scaled), as the original:
    separate (nearest, then conv2d) or fused (one stride-2 transposed convolution).  The two are
    the same operation up to a flip of the kernel: TensorFlow's transposed convolution convolves
    where its conv2d correlates, so a network trained with one does not run with the other."""
    if fused:
        return F.conv_transpose2d(x, fused_upscale_kernel(weight), stride=2, padding=1)
    return F.conv2d(upscale2d(x), weight, padding=KERNEL // 2)


# ---- building blocks -------------------------------------------------------------------------------
class DenseLayer(nn.Module):
    """Equalised dense layer (weight [out, in]) with lr multiplier and an optional activation."""

    def __init__(self, in_features: int, out_features: int, gain: float, use_wscale: bool = True,
                 lr_multiplier: float = 1.0, activation: str | None = None):
        super().__init__()
        self.activation = activation
        self.weight = initial_weight([out_features, in_features], in_features, gain, use_wscale, lr_multiplier)
        self.bias = nn.Parameter(torch.zeros([out_features]))
        self.weight_gain = runtime_gain(in_features, gain, use_wscale, lr_multiplier)
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return ACTIVATIONS[self.activation](x) if self.activation else x


@dataclasses.dataclass(frozen=True)
class MappingOptions:
    """``G_mapping`` keyword arguments (original defaults)."""

    num_layers: int = 8  # mapping_layers
    layer_features: int = 512  # mapping_fmaps: width of every layer but the last (which is w_dim)
    lr_multiplier: float = 0.01  # mapping_lrmul
    activation: str = "lrelu"  # mapping_nonlinearity: "lrelu" or "relu"
    normalize_latents: bool = True  # pixel norm of [z, embedded label] before the first layer
    use_wscale: bool = True


class MappingNetwork(nn.Module):
    """z (and a label) -> w, broadcast to num_ws rows; holds ``w_avg`` for truncation."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, options: MappingOptions,
                 truncation_cutoff: int | None):
        super().__init__()
        self.z_dim, self.c_dim, self.num_ws = z_dim, c_dim, num_ws
        self.options = options
        self.truncation_cutoff = truncation_cutoff
        if c_dim > 0:  # LabelConcat: a plain (not equalised) [label -> z_dim] matrix, stored [out, in]
            self.embed = nn.Parameter(torch.randn([z_dim, c_dim]))
        features = [z_dim * (2 if c_dim else 1)] + [options.layer_features] * (options.num_layers - 1) + [w_dim]
        for idx in range(options.num_layers):
            setattr(self, f"fc{idx}", DenseLayer(features[idx], features[idx + 1], gain=HE_GAIN,
                                                 use_wscale=options.use_wscale,
                                                 lr_multiplier=options.lr_multiplier,
                                                 activation=options.activation))
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: Tensor, c: Tensor | None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> Tensor:
        x = z.to(torch.float32)
        if self.c_dim > 0:
            x = torch.cat([x, c.to(torch.float32) @ self.embed.t()], dim=1)
        if self.options.normalize_latents:
            x = pixel_norm(x)
        for idx in range(self.options.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            cutoff = self.truncation_cutoff if truncation_cutoff is None else truncation_cutoff
            head = self.w_avg.lerp(x[:, :cutoff], truncation_psi)
            x = torch.cat([head, x[:, head.shape[1]:]], dim=1)
        return x


@dataclasses.dataclass(frozen=True)
class SynthesisOptions:
    """The ``G_synthesis`` keyword arguments that change results (original defaults)."""

    fmap_base: int = 8192  # channels of the block at height 2**r: min(fmap_base / 2**((r-1) * fmap_decay), fmap_max)
    fmap_decay: float = 1.0
    fmap_max: int = 512
    nonlinearity: str = "lrelu"  # "lrelu" or "relu"
    use_wscale: bool = True
    use_noise: bool = True
    use_pixel_norm: bool = False
    use_instance_norm: bool = True
    fused_scale: bool | str = "auto"  # True, False or "auto" (fused from 128 pixels on)
    blur_filter: tuple[float, ...] | None = (1.0, 2.0, 1.0)  # after every up-sampling; None = none

    def __post_init__(self):
        if self.nonlinearity not in ACTIVATIONS:
            raise ValueError(f"nonlinearity must be one of {sorted(ACTIVATIONS)}, got {self.nonlinearity!r}")
        if self.fused_scale not in (True, False, "auto"):
            raise ValueError(f"fused_scale must be true, false or \"auto\", got {self.fused_scale!r}")
        if self.blur_filter is not None and not 1 <= len(self.blur_filter) <= limits.MAX_KERNEL:
            raise ValueError(f"blur_filter must have 1 to {limits.MAX_KERNEL} taps, got {len(self.blur_filter)}")

    def fused_at(self, size: tuple[int, int]) -> bool:
        """Whether the up-sampling layer producing ``size`` (h, w) is fused."""
        if self.fused_scale == "auto":
            return min(size) >= FUSED_SCALE_FROM
        return bool(self.fused_scale)


class SynthesisLayer(nn.Module):
    """One layer: its input (the constant, a 3x3 conv, or 2x up-sampling conv + blur), then the
    epilogue: noise, bias, activation, (pixel norm), (instance norm), style modulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, size: tuple[int, int],
                 options: SynthesisOptions, up: bool = False):
        super().__init__()
        self.size, self.up, self.options = size, up, options
        self.fused = up and options.fused_at(size)
        if in_channels == 0:
            self.const = nn.Parameter(torch.ones([out_channels, *size]))
        else:
            fan_in = in_channels * KERNEL * KERNEL
            self.weight = initial_weight([out_channels, in_channels, KERNEL, KERNEL], fan_in, HE_GAIN,
                                         options.use_wscale)
            self.weight_gain = runtime_gain(fan_in, HE_GAIN, options.use_wscale)
        if up and options.blur_filter is not None:
            self.register_buffer("blur", blur_kernel(options.blur_filter), persistent=False)
        if options.use_noise:
            self.noise_strength = nn.Parameter(torch.zeros([out_channels]))  # the original's Noise/weight
            self.register_buffer("noise_const", torch.randn(list(size)))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.affine = DenseLayer(w_dim, 2 * out_channels, gain=1, use_wscale=options.use_wscale)  # StyleMod

    def noise(self, batch: int, mode: str, generator: torch.Generator | None, device: torch.device,
              const: Tensor | None = None) -> Tensor | None:
        """(1 or N, 1, h, w) unscaled noise for ``mode`` ("const", "random" or "none"); ``const``
        replaces the stored map in mode "const"."""
        if not self.options.use_noise or mode == "none":
            return None
        if mode == "const":
            return (self.noise_const if const is None else const)[None, None]
        return torch.randn([batch, 1, *self.size], generator=generator, device=generator.device).to(device)

    def forward(self, x: Tensor | None, w: Tensor, noise: Tensor | None) -> Tensor:
        if x is None:
            x = self.const.unsqueeze(0).repeat([w.shape[0], 1, 1, 1])
        elif self.up:
            weight = self.weight * self.weight_gain
            x = per_sample(lambda i: upscale2d_conv2d(x[i], weight, self.fused), runs_on(x))
            if self.options.blur_filter is not None:
                x = blur2d(x, self.blur)
        else:
            weight = self.weight * self.weight_gain
            x = per_sample(lambda i: F.conv2d(x[i], weight, padding=KERNEL // 2), runs_on(x))
        return self.epilogue(x, w, noise)

    def epilogue(self, x: Tensor, w: Tensor, noise: Tensor | None) -> Tensor:
        if noise is not None:
            x = x + noise * self.noise_strength.reshape(1, -1, 1, 1)
        x = ACTIVATIONS[self.options.nonlinearity](x + self.bias.reshape(1, -1, 1, 1))
        if self.options.use_pixel_norm:
            x = pixel_norm(x)
        if self.options.use_instance_norm:
            x = instance_norm(x)
        style = per_sample(lambda i: self.affine(w[i]), runs_on(w)).reshape(w.shape[0], 2, -1, 1, 1)
        return x * (style[:, 0] + 1) + style[:, 1]


class ToRGBLayer(nn.Module):
    """1x1 equalised convolution (gain 1) plus bias: the image at the final resolution."""

    def __init__(self, in_channels: int, img_channels: int, use_wscale: bool):
        super().__init__()
        self.weight = initial_weight([img_channels, in_channels, 1, 1], in_channels, 1, use_wscale)
        self.bias = nn.Parameter(torch.zeros([img_channels]))
        self.weight_gain = runtime_gain(in_channels, 1, use_wscale)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.weight_gain, self.bias)


# ---- configuration ---------------------------------------------------------------------------------
def block_channels(heights: list[int], options: SynthesisOptions,
                   channels: Mapping[Any, int] | None) -> dict[int, int]:
    """Channels of each block: the given table, or the original's ``nf(log2(height) - 1)``."""
    if channels is None:
        base = limits.whole("fmap_base", options.fmap_base, high=limits.MAX_VALUES)
        fmap_max = limits.whole("fmap_max", options.fmap_max)
        table = {h: min(int(base / 2.0 ** ((int(math.log2(h)) - 1) * options.fmap_decay)), fmap_max)
                 for h in heights}
    elif isinstance(channels, Mapping):
        table = {int(k): v for k, v in channels.items()}
    else:
        raise ValueError(f"channels must map block heights to channel counts, got {type(channels).__name__}")
    missing = [h for h in heights if h not in table]
    if missing:
        raise ValueError(f"channels table has no entry for block heights {missing}")
    return {h: limits.whole(f"channels of block {h}", table[h]) for h in heights}


def _stored_values(sizes: dict[int, tuple[int, int]], channels: dict[int, int], w_dim: int,
                   img_channels: int) -> int:
    """Parameters and buffers of the synthesis network."""
    def layer(in_channels: int, out_channels: int, area: int) -> int:
        weights = in_channels * out_channels * KERNEL * KERNEL if in_channels else out_channels * area
        return weights + (w_dim + 1) * 2 * out_channels + 2 * out_channels + area

    total = 0
    for h, (height, width) in sizes.items():
        out = channels[h]
        total += layer(channels[h // 2] if h > 4 else 0, out, height * width) + layer(out, out, height * width)
    last = max(sizes)
    return total + (channels[last] + 1) * img_channels


def _mapping_values(z_dim: int, c_dim: int, w_dim: int, options: MappingOptions) -> int:
    limits.whole("mapping num_layers", options.num_layers, high=limits.MAX_LAYERS)
    limits.whole("mapping layer_features", options.layer_features)
    features = [z_dim * (2 if c_dim else 1)] + [options.layer_features] * (options.num_layers - 1) + [w_dim]
    return sum((a + 1) * b for a, b in zip(features, features[1:])) + c_dim * z_dim + w_dim


def _options(cls: type, kwargs: Mapping[str, Any] | None, what: str) -> Any:
    kwargs = dict(kwargs or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(f"StyleGAN1Generator: unsupported {what} argument(s) {', '.join(unknown)}")
    if kwargs.get("blur_filter") is not None:
        kwargs["blur_filter"] = tuple(float(t) for t in kwargs["blur_filter"])
    return cls(**kwargs)


def _state(x: Tensor | None) -> LayerState:
    """What a layer hands the next: its activation (nothing before the first layer)."""
    return {} if x is None else {"x": x}


@dataclasses.dataclass(frozen=True)
class _Step:
    """How to run one entry of ``generator.layers``."""

    block: int  # block height
    role: str  # "const", "conv", "conv0", "conv1" or "torgb"


# ---- the generator ---------------------------------------------------------------------------------
class StyleGAN1Generator(GeneratorBase):
    """StyleGAN (v1) ``G_style`` (mapping + synthesis) with the ganinterface layer API."""

    architecture = "stylegan1"

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: Mapping[str, Any] | None = None,
        img_width: int | None = None,
        channels: Mapping[Any, int] | None = None,
        truncation_cutoff: int | None = 8,
        **synthesis_kwargs: Any,
    ):
        """``z_dim`` is the original's latent_size, ``c_dim`` label_size, ``w_dim`` dlatent_size,
        ``img_resolution`` resolution (the height), ``img_channels`` num_channels; see
        ``MappingOptions`` and ``SynthesisOptions`` for the rest.  ``truncation_cutoff``: the rows
        truncated when a caller gives none (None: all)."""
        mapping_options = _options(MappingOptions, mapping_kwargs, "mapping")
        options = _options(SynthesisOptions, synthesis_kwargs, "synthesis")
        z_dim, c_dim = limits.whole("z_dim", z_dim), limits.whole("c_dim", c_dim, low=0)
        w_dim, img_channels = limits.whole("w_dim", w_dim), limits.whole("img_channels", img_channels)
        img_resolution = limits.resolution("img_resolution", img_resolution)
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        width = img_resolution if img_width is None else limits.resolution("img_width", img_width)
        if (4 * width) % img_resolution:
            raise ValueError(f"img_width {width} must make the 4-pixel-high constant a whole number of "
                             f"pixels wide (4 * width divisible by height {img_resolution})")
        if truncation_cutoff is not None:
            truncation_cutoff = limits.whole("truncation_cutoff", truncation_cutoff, low=0, high=limits.MAX_LAYERS)
        if mapping_options.activation not in ACTIVATIONS:
            raise ValueError(f"mapping activation must be one of {sorted(ACTIVATIONS)}, "
                             f"got {mapping_options.activation!r}")

        heights = [2**i for i in range(2, int(math.log2(img_resolution)) + 1)]
        sizes = {h: (h, h * width // img_resolution) for h in heights}
        channels_of = block_channels(heights, options, channels)
        limits.check_values("this StyleGAN generator",
                            _stored_values(sizes, channels_of, w_dim, img_channels)
                            + _mapping_values(z_dim, c_dim, w_dim, mapping_options))
        super().__init__()  # only now: nothing is allocated for a configuration refused above

        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_channels, self.img_resolution = img_channels, img_resolution
        self.img_height, self.img_width = img_resolution, width
        self.options = options
        self._config = dict(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            mapping_kwargs=dataclasses.asdict(mapping_options), img_width=img_width,
            channels=None if channels is None else {str(h): channels_of[h] for h in heights},
            truncation_cutoff=truncation_cutoff, **dataclasses.asdict(options))
        if options.blur_filter is not None:
            self._config["blur_filter"] = list(options.blur_filter)

        self.synthesis = nn.Module()
        for h in heights:
            block = nn.Module()
            if h == 4:
                block.const = SynthesisLayer(0, channels_of[h], w_dim, sizes[h], options)
                block.conv = SynthesisLayer(channels_of[h], channels_of[h], w_dim, sizes[h], options)
            else:
                block.conv0 = SynthesisLayer(channels_of[h // 2], channels_of[h], w_dim, sizes[h], options, up=True)
                block.conv1 = SynthesisLayer(channels_of[h], channels_of[h], w_dim, sizes[h], options)
            setattr(self.synthesis, f"b{h}", block)
        last = heights[-1]
        getattr(self.synthesis, f"b{last}").torgb = ToRGBLayer(channels_of[last], img_channels, options.use_wscale)

        self._steps, self.layers = [], []
        for h in heights:
            for role in ("const", "conv") if h == 4 else ("conv0", "conv1"):
                self._steps.append(_Step(h, role))
                self.layers.append(LayerInfo(f"b{h}.{role}", channels_of[h], *sizes[h], (len(self.layers),), "conv"))
        self.num_ws = len(self.layers)
        self._steps.append(_Step(last, "torgb"))
        self.layers.append(LayerInfo(f"b{last}.torgb", img_channels, *sizes[last], (), "torgb"))
        # Registered under the name "mapping" (state-dict keys mapping.*); the attribute `mapping`
        # stays the GeneratorBase method, so reach the module through `mapping_network`.
        self._modules["mapping"] = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, mapping_options,
                                                  truncation_cutoff)
        self.eval()

    # ---- GeneratorBase -----------------------------------------------------------------------
    @property
    def mapping_network(self) -> MappingNetwork:
        return self._modules["mapping"]

    @property
    def w_avg(self) -> Tensor:
        return self.mapping_network.w_avg

    def mapping(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> Tensor:
        """Truncation moves rows ``0 .. cutoff-1`` towards ``w_avg``; a ``truncation_cutoff`` of
        None means the network's own (8 unless the checkpoint says otherwise)."""
        if self.c_dim > 0 and c is None:
            raise ValueError(f"this generator is conditional: pass c with {self.c_dim} columns")
        return self.mapping_network(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)

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
        stop = len(self.layers) if stop is None else stop
        hooks = hooks or {}
        self._check_style_offsets(style_offsets or {}, ws.shape[0])  # none here: AdaIN, no modulation
        self._check_synthesis_args(ws, start, state, stop, noise_mode, [*taps, *hooks], compute_dtype)
        noise_maps = noise_maps or {}
        self._check_noise_maps(noise_maps)
        ws = ws.to(torch.float32)
        x = state.get("x") if start > 0 else None
        kept: dict[int, LayerState] = {}
        tapped: dict[str, Tensor] = {}
        for k in range(start, stop):
            if k in keep_states:
                kept[k] = _state(x)
            name = self.layers[k].name
            x = self._run_step(k, x, ws, noise_mode, noise_seed, noise_maps.get(name))
            if name in hooks:
                x = hooks[name](x)
            if name in taps:
                tapped[name] = x
        if stop in keep_states:
            kept[stop] = _state(x)
        image = x if stop == len(self.layers) else torch.empty(0)
        return SynthesisOutput(image=image, taps=tapped, states=kept)

    def stored_noise(self) -> dict[str, Tensor]:
        stored = {}
        for step, info in zip(self._steps, self.layers):
            layer = getattr(getattr(self.synthesis, f"b{step.block}"), step.role)
            if step.role != "torgb" and layer.options.use_noise:
                stored[info.name] = layer.noise_const
        return stored

    def _run_step(self, k: int, x: Tensor | None, ws: Tensor, noise_mode: str, noise_seed: int,
                  noise_map: Tensor | None) -> Tensor:
        step = self._steps[k]
        layer = getattr(getattr(self.synthesis, f"b{step.block}"), step.role)
        if step.role == "torgb":
            return layer(x)
        generator = layer_noise_generator(noise_seed, k) if noise_mode == "random" else None
        noise = layer.noise(ws.shape[0], noise_mode, generator, ws.device, noise_map)
        return layer(x, ws[:, k], noise)
