"""StyleGAN3 ("Alias-Free Generative Adversarial Networks", Karras et al. 2021) in pure PyTorch.

Numerics and parameter names follow NVlabs' ``training/networks_stylegan3.py``: an NVlabs state dict
loads with ``load_state_dict(strict=True)`` and, in float32 on the CPU, gives the image of NVlabs'
reference (non-CUDA) ops to float rounding (the filtered leaky ReLU is computed in a faster but
equivalent way; ``filtered_lrelu_reference`` is the literal path).  Both published configurations
are covered: StyleGAN3-T (separable Kaiser low-pass filters, 3x3 convolutions) and StyleGAN3-R
(radially symmetric jinc filters, 1x1 convolutions), at any square resolution.

Layers, as ``GeneratorBase`` sees them: layer 0 is ``"input"`` (Fourier features, reads ``ws[:, 0]``),
layer ``k >= 1`` is NVlabs' ``L{k-1}_{size}_{channels}`` and reads ``ws[:, k]``; the last one makes
the RGB image, which ``synthesize`` multiplies by ``output_scale`` as NVlabs does.  All but the last
two layers compute a border around the image (``LayerInfo.margin``).  StyleGAN3 has no noise
inputs, so ``noise_mode`` is accepted and has no effect.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ganinterface.models import limits, ops
from ganinterface.models.base import (NOISE_MODES, GeneratorBase, LayerHook, LayerInfo, LayerState,
                                      SynthesisOutput, per_sample, runs_on, with_offset)
# StyleGAN3 shares these with StyleGAN2 unchanged (same parameters, same numerics).
from ganinterface.models.stylegan2_layers import FullyConnectedLayer, MappingNetwork, affine_styles

Tensor = torch.Tensor

# ---------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MappingConfig:
    """NVlabs ``MappingNetwork`` keyword arguments (StyleGAN3's defaults differ from StyleGAN2's)."""

    num_layers: int = 2  # fully connected layers
    lr_multiplier: float = 0.01  # learning-rate multiplier baked into the weight and bias gains
    w_avg_beta: float = 0.998  # decay of the tracked mean of w (training only)


@dataclasses.dataclass(frozen=True)
class SynthesisConfig:
    """NVlabs ``SynthesisNetwork`` and ``SynthesisLayer`` keyword arguments, with their defaults."""

    channel_base: int = 32768  # overall multiplier for the number of channels
    channel_max: int = 512  # maximum number of channels in any layer
    num_layers: int = 14  # layers excluding the Fourier input and the RGB layer
    num_critical: int = 2  # critically sampled layers at the end
    first_cutoff: float = 2  # cutoff frequency of the first layer, f_{c,0}
    first_stopband: float = 2**2.1  # minimum stopband of the first layer, f_{t,0}
    last_stopband_rel: float = 2**0.3  # minimum stopband of the last layer, relative to its cutoff
    margin_size: int = 10  # extra pixels computed outside the image on each side
    output_scale: float = 0.25  # scale factor of the output image
    num_fp16_res: int = 4  # NVlabs runs these resolutions in float16 on CUDA; we stay in float32
    conv_kernel: int = 3  # convolution kernel size (1 for StyleGAN3-R); the RGB layer always uses 1
    filter_size: int = 6  # low-pass taps relative to the lower resolution when resampling
    lrelu_upsampling: int = 2  # relative sampling rate at which the leaky ReLU is evaluated
    use_radial_filters: bool = False  # jinc down-sampling filters (StyleGAN3-R)
    conv_clamp: float | None = 256  # clamp layer outputs to [-conv_clamp, conv_clamp]; None = off
    magnitude_ema_beta: float = 0.999  # decay of the tracked input magnitude (training only)
    resize: int | None = None  # forks (DragGAN): the final image resized to resize x resize


def _config_from_kwargs(cls: type, kwargs: Mapping[str, Any], what: str) -> Any:
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(f"StyleGAN3Generator: unknown {what} argument(s): {', '.join(unknown)}")
    return cls(**kwargs)


def _check_sizes(z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping: MappingConfig, cfg: SynthesisConfig) -> None:
    """Refuse arguments that cannot describe a network (e.g. from a damaged checkpoint), or that
    describe one too large to build, before anything is allocated."""
    try:
        _check_ranges(z_dim, c_dim, w_dim, img_resolution, img_channels, cfg)
        if not 0 <= cfg.num_critical < cfg.num_layers:
            raise ValueError(f"need 0 <= num_critical ({cfg.num_critical}) < num_layers ({cfg.num_layers})")
        if not 0 < cfg.first_cutoff < img_resolution / 2:
            raise ValueError(f"first_cutoff must lie within (0, {img_resolution / 2})")
        limits.check_values("this StyleGAN3 generator",
                            _stored_values(w_dim, img_resolution, img_channels, cfg)
                            + limits.mapping_values(z_dim, c_dim, w_dim, mapping.num_layers))
    except ValueError as error:
        raise ValueError(f"StyleGAN3Generator: {error}") from None


def _check_ranges(z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                  cfg: SynthesisConfig) -> None:
    for name, value in dict(z_dim=z_dim, w_dim=w_dim, img_channels=img_channels,
                            channel_max=cfg.channel_max).items():
        limits.whole(name, value)
    if cfg.resize is not None:
        limits.resolution("resize", cfg.resize)
    limits.whole("c_dim", c_dim, low=0)
    limits.resolution("img_resolution", img_resolution)
    limits.whole("channel_base", cfg.channel_base, high=limits.MAX_VALUES)
    limits.whole("num_layers", cfg.num_layers, high=limits.MAX_LAYERS)
    limits.whole("num_critical", cfg.num_critical, low=0, high=limits.MAX_LAYERS)
    limits.whole("margin_size", cfg.margin_size, low=0, high=limits.MAX_RESOLUTION)
    for name in ("conv_kernel", "filter_size", "lrelu_upsampling"):
        limits.whole(name, getattr(cfg, name), high=limits.MAX_KERNEL)


def _stored_values(w_dim: int, img_resolution: int, img_channels: int, cfg: SynthesisConfig) -> int:
    """Parameters and buffers the synthesis network will hold (filters counted generously)."""
    input_spec, specs = layer_schedule(img_resolution, img_channels, cfg)
    total = input_spec.channels * (input_spec.channels + 3) + (w_dim + 1) * 4 + 9
    widest_filter = (cfg.filter_size * cfg.lrelu_upsampling * 2) ** 2
    for spec in specs:
        kernel = 1 if spec.is_torgb else cfg.conv_kernel
        total += spec.out_channels * spec.in_channels * kernel * kernel
        total += (w_dim + 1) * spec.in_channels + spec.out_channels + 1 + 2 * widest_filter
    return total


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """Everything one synthesis layer needs to know about its place in the frequency schedule."""

    index: int
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: int
    out_sampling_rate: int
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    is_torgb: bool
    is_critically_sampled: bool

    @property
    def name(self) -> str:
        return f"L{self.index}_{self.out_size}_{self.out_channels}"


@dataclasses.dataclass(frozen=True)
class InputSpec:
    channels: int
    size: int
    sampling_rate: float
    bandwidth: float


def layer_schedule(img_resolution: int, img_channels: int,
                   cfg: SynthesisConfig) -> tuple[InputSpec, list[LayerSpec]]:
    """Cutoffs, stopbands, sampling rates, sizes and channels of every layer (paper, Sec. 3.2).

    Cutoffs and minimum stopbands grow geometrically from the first layer to the last
    non-critical one and then stay at the image's Nyquist rate.
    """
    n = cfg.num_layers
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * cfg.last_stopband_rel
    exponents = np.minimum(np.arange(n + 1) / (n - cfg.num_critical), 1)
    cutoffs = cfg.first_cutoff * (last_cutoff / cfg.first_cutoff) ** exponents
    stopbands = cfg.first_stopband * (last_stopband / cfg.first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + cfg.margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((cfg.channel_base / 2) / cutoffs, cfg.channel_max))
    channels[-1] = img_channels

    input_spec = InputSpec(channels=int(channels[0]), size=int(sizes[0]),
                           sampling_rate=float(sampling_rates[0]), bandwidth=float(cutoffs[0]))
    specs = []
    for idx in range(n + 1):
        prev = max(idx - 1, 0)
        specs.append(LayerSpec(
            index=idx,
            in_channels=int(channels[prev]), out_channels=int(channels[idx]),
            in_size=int(sizes[prev]), out_size=int(sizes[idx]),
            in_sampling_rate=int(sampling_rates[prev]), out_sampling_rate=int(sampling_rates[idx]),
            in_cutoff=float(cutoffs[prev]), out_cutoff=float(cutoffs[idx]),
            in_half_width=float(half_widths[prev]), out_half_width=float(half_widths[idx]),
            is_torgb=idx == n, is_critically_sampled=idx >= n - cfg.num_critical))
    return input_spec, specs


# ---------------------------------------------------------------------------------------------------
# Low-pass filter design (what scipy.signal.firwin and NVlabs' jinc construction compute)
# ---------------------------------------------------------------------------------------------------


def kaiser_beta_for(numtaps: int, width: float, fs: float) -> float:
    """Kaiser window shape parameter for a transition band ``width`` (Hz), Kaiser's empirical rule."""
    attenuation_db = 2.285 * (numtaps - 1) * np.pi * (width / (fs / 2)) + 7.95
    if attenuation_db > 50:
        return 0.1102 * (attenuation_db - 8.7)
    if attenuation_db > 21:
        return 0.5842 * (attenuation_db - 21) ** 0.4 + 0.07886 * (attenuation_db - 21)
    return 0.0


def kaiser_lowpass(numtaps: int, cutoff: float, width: float, fs: float) -> np.ndarray:
    """Windowed-sinc low-pass FIR with unit DC gain (same taps as ``scipy.signal.firwin``)."""
    if not 0 < cutoff < fs / 2:
        raise ValueError(f"cutoff {cutoff} must lie strictly between 0 and Nyquist {fs / 2}")
    relative_cutoff = cutoff / (fs / 2)
    offsets = np.arange(numtaps) - (numtaps - 1) / 2
    taps = relative_cutoff * np.sinc(relative_cutoff * offsets)
    taps = taps * np.kaiser(numtaps, kaiser_beta_for(numtaps, width, fs))
    return taps / taps.sum()


def jinc_lowpass(numtaps: int, cutoff: float, width: float, fs: float) -> np.ndarray:
    """Radially symmetric 2-D low-pass: a jinc with a separable Kaiser window, unit DC gain."""
    coords = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    radius = np.hypot(*np.meshgrid(coords, coords))
    bessel = bessel_j1(2 * np.pi * cutoff * radius)
    with np.errstate(invalid="ignore", divide="ignore"):
        taps = np.where(radius > 0, bessel / (np.pi * radius), cutoff)  # jinc's limit at r = 0
    window = np.kaiser(numtaps, kaiser_beta_for(numtaps, width, fs))
    taps = taps * np.outer(window, window)
    return taps / taps.sum()


def bessel_j1(x: np.ndarray) -> np.ndarray:
    """Bessel function J1 to float64 precision, without scipy.

    Bessel's integral J1(x) = 1/(2 pi) * integral over one period of cos(t - x sin t) dt; the
    trapezoidal rule on a periodic integrand converges exponentially once the number of samples
    exceeds |x| by a margin.  (``torch.special.bessel_j1`` is off by up to 5e-7 near x = 5.)
    """
    x = np.asarray(x, dtype=np.float64)
    samples = int(np.ceil(1.1 * np.max(np.abs(x), initial=0.0))) + 64
    t = 2 * np.pi * np.arange(samples) / samples
    return np.cos(t - x[..., None] * np.sin(t)).mean(axis=-1)


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float,
                          radial: bool = False) -> Tensor | None:
    """The filter NVlabs stores in ``up_filter``/``down_filter``: None for one tap (identity)."""
    if numtaps < 1:
        raise ValueError(f"numtaps must be at least 1, got {numtaps}")
    if numtaps == 1:
        return None
    design = jinc_lowpass if radial else kaiser_lowpass
    return torch.as_tensor(design(numtaps, cutoff, width, fs), dtype=torch.float32)


# ---------------------------------------------------------------------------------------------------
# Primitive ops (NVlabs reference semantics)
# ---------------------------------------------------------------------------------------------------


def filtered_lrelu_reference(x: Tensor, up_filter: Tensor | None, down_filter: Tensor | None,
                             bias: Tensor, up: int, down: int, padding: tuple[int, int, int, int],
                             gain: float, slope: float, clamp: float | None) -> Tensor:
    """Bias, upsample, leaky ReLU (times gain, clamped), downsample: NVlabs' reference path."""
    x = ops.bias_act(x, bias)
    x = ops.upfirdn2d(x, up_filter, up=up, padding=padding, gain=up**2)
    x = ops.bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    return ops.upfirdn2d(x, down_filter, down=down)


def filtered_lrelu(x: Tensor, up_filter: Tensor | None, down_filter: Tensor | None, bias: Tensor,
                   up: int, down: int, padding: tuple[int, int, int, int], gain: float,
                   slope: float, clamp: float | None) -> Tensor:
    """``filtered_lrelu_reference`` computed about 2-3x faster on the CPU (same result up to rounding).

    The reference filters at the high rate before throwing samples away; here the down-sampling is
    one strided convolution with the full 2-D kernel, which PyTorch runs much faster than two 1-D
    depthwise passes (``ops.upfirdn2d`` up-samples as one transposed convolution already).
    """
    x = ops.bias_act(x, bias)
    x = ops.upfirdn2d(x, up_filter, up=up, padding=padding, gain=up**2)
    x = ops.bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    return _downsample_fir(x, down_filter, down)


def _downsample_fir(x: Tensor, f: Tensor | None, down: int) -> Tensor:
    """``ops.upfirdn2d(x, f, down=down)`` as one strided convolution."""
    if f is None and down == 1:
        return x
    kernel = ops.full_kernel(f).flip([0, 1])  # conv2d correlates; the filter is a convolution
    return nn.functional.conv2d(x, ops.depthwise_weight(kernel, x), stride=down, groups=x.shape[1])


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool, padding: int,
                     input_gain: Tensor | None = None) -> Tensor:
    """StyleGAN3's modulated convolution: pre-normalised, one grouped convolution for the batch."""
    batch = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    if demodulate:  # normalising first keeps float16 in range on NVlabs' side; numerics follow it
        weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    w = weight.unsqueeze(0) * styles[:, None, :, None, None]  # [N, O, I, kh, kw]
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    if input_gain is not None:
        w = w * input_gain.expand(batch, in_channels)[:, None, :, None, None]
    x = x.reshape(1, batch * in_channels, *x.shape[2:])
    w = w.reshape(batch * out_channels, in_channels, kh, kw)
    x = nn.functional.conv2d(x, w.to(x.dtype), padding=padding, groups=batch)
    return x.reshape(batch, out_channels, *x.shape[2:])


# ---------------------------------------------------------------------------------------------------
# Modules (names and parameters as NVlabs, so state dicts match key for key)
# ---------------------------------------------------------------------------------------------------


class SynthesisInput(nn.Module):
    """Fourier features on a grid, rotated and translated by an affine function of w."""

    def __init__(self, w_dim: int, spec: InputSpec):
        super().__init__()
        self.channels = spec.channels
        self.size = spec.size
        self.sampling_rate = spec.sampling_rate
        self.bandwidth = spec.bandwidth
        # Random frequencies, uniform in the disc of radius `bandwidth`; random phases.
        freqs = torch.randn([self.channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)
        freqs *= self.bandwidth
        phases = torch.rand([self.channels]) - 0.5
        self.weight = nn.Parameter(torch.randn([self.channels, self.channels]))
        self.affine = FullyConnectedLayer(w_dim, 4)
        with torch.no_grad():  # start with the identity transform: (cos, sin, tx, ty) = (1, 0, 0, 0)
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        # Inverse of a user transform of the image (3x3 homogeneous, identity = none).
        self.register_buffer("transform", torch.eye(3, 3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def _transforms(self, w: Tensor) -> Tensor:
        """Per-sample 3x3: learned rotation, then learned translation, then the user transform."""
        t = self.affine(w)  # (cos, sin, tx, ty) up to scale
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        eye = torch.eye(3, device=w.device).unsqueeze(0).repeat([w.shape[0], 1, 1])
        rotation = eye.clone()
        rotation[:, 0, 0] = t[:, 0]
        rotation[:, 0, 1] = -t[:, 1]
        rotation[:, 1, 0] = t[:, 1]
        rotation[:, 1, 1] = t[:, 0]
        translation = eye
        translation[:, 0, 2] = -t[:, 2]
        translation[:, 1, 2] = -t[:, 3]
        return rotation @ translation @ self.transform.unsqueeze(0)

    def forward(self, w: Tensor) -> Tensor:
        transforms = self._transforms(w)
        freqs = self.freqs.unsqueeze(0)
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]
        # A user transform may push frequencies past the band: fade those out.
        amplitudes = 1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)
        amplitudes = amplitudes.clamp(0, 1)

        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = 0.5 * self.size / self.sampling_rate
        theta[1, 1] = 0.5 * self.size / self.sampling_rate
        grid = nn.functional.affine_grid(theta.unsqueeze(0), [1, 1, self.size, self.size],
                                         align_corners=False)  # [1, H, W, xy]
        x = (grid.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)
        x = x + phases.unsqueeze(1).unsqueeze(2)  # [N, H, W, C]
        x = torch.sin(x * (np.pi * 2)) * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / np.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)


class SynthesisLayer(nn.Module):
    """Modulated convolution followed by a filtered (alias-suppressed) leaky ReLU."""

    def __init__(self, w_dim: int, spec: LayerSpec, cfg: SynthesisConfig):
        super().__init__()
        self.is_torgb = spec.is_torgb
        self.in_channels = spec.in_channels
        self.out_channels = spec.out_channels
        self.in_size = spec.in_size
        self.out_size = spec.out_size
        self.out_sampling_rate = spec.out_sampling_rate
        self.conv_kernel = 1 if spec.is_torgb else cfg.conv_kernel
        self.conv_clamp = cfg.conv_clamp
        self.magnitude_ema_beta = cfg.magnitude_ema_beta

        self.affine = FullyConnectedLayer(w_dim, self.in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([self.out_channels, self.in_channels,
                                                self.conv_kernel, self.conv_kernel]))
        self.bias = nn.Parameter(torch.zeros([self.out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))

        # The leaky ReLU runs at a higher temporary rate so its harmonics can be filtered out.
        tmp_rate = max(spec.in_sampling_rate, spec.out_sampling_rate) * (
            1 if spec.is_torgb else cfg.lrelu_upsampling)
        self.up_factor = _integer_ratio(tmp_rate, spec.in_sampling_rate)
        self.down_factor = _integer_ratio(tmp_rate, spec.out_sampling_rate)
        resamples = not spec.is_torgb
        up_taps = cfg.filter_size * self.up_factor if self.up_factor > 1 and resamples else 1
        down_taps = cfg.filter_size * self.down_factor if self.down_factor > 1 and resamples else 1
        self.register_buffer("up_filter", design_lowpass_filter(
            up_taps, spec.in_cutoff, spec.in_half_width * 2, tmp_rate))
        self.register_buffer("down_filter", design_lowpass_filter(
            down_taps, spec.out_cutoff, spec.out_half_width * 2, tmp_rate,
            radial=cfg.use_radial_filters and not spec.is_critically_sampled))

        # Padding that centres the output samples (symmetric interpretation, paper appendix C.3).
        pad_total = (self.out_size - 1) * self.down_factor + 1
        pad_total -= (self.in_size + self.conv_kernel - 1) * self.up_factor
        pad_total += up_taps + down_taps - 2
        pad_lo = (pad_total + self.up_factor) // 2
        pad_hi = pad_total - pad_lo
        self.padding = (pad_lo, pad_hi, pad_lo, pad_hi)

    def forward(self, x: Tensor, w: Tensor, update_emas: bool = False,
                style_offset: Tensor | None = None) -> Tensor:
        if update_emas:
            magnitude = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        runs = runs_on(x)
        styles = with_offset(affine_styles(self.affine, w, runs), style_offset)
        if self.is_torgb:
            styles = styles * (1 / np.sqrt(self.in_channels * self.conv_kernel**2))
        # the filter too runs sample by sample: at the temporary rate a batch outgrows the caches
        # (a batch of 4 took 1.4-1.7x the time of 4 samples one at a time)
        return per_sample(lambda i: self._convolved(x[i], styles[i]), runs)

    def _convolved(self, x: Tensor, styles: Tensor) -> Tensor:
        x = modulated_conv2d(x, self.weight, styles, demodulate=not self.is_torgb,
                             padding=self.conv_kernel - 1, input_gain=self.magnitude_ema.rsqrt())
        return filtered_lrelu(
            x, self.up_filter, self.down_filter, self.bias.to(x.dtype),
            up=self.up_factor, down=self.down_factor, padding=self.padding,
            gain=1 if self.is_torgb else np.sqrt(2), slope=1 if self.is_torgb else 0.2,
            clamp=self.conv_clamp)


def _integer_ratio(numerator: float, denominator: float) -> int:
    ratio = int(np.rint(numerator / denominator))
    if denominator * ratio != numerator:
        raise ValueError(f"sampling rates {numerator} and {denominator} are not integer multiples")
    return ratio


class SynthesisNetwork(nn.Module):
    """Container with NVlabs' attribute names: ``input`` and ``L{idx}_{size}_{channels}``."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, cfg: SynthesisConfig):
        super().__init__()
        input_spec, specs = layer_schedule(img_resolution, img_channels, cfg)
        self.input = SynthesisInput(w_dim, input_spec)
        self.layer_names = [spec.name for spec in specs]
        for spec in specs:
            setattr(self, spec.name, SynthesisLayer(w_dim, spec, cfg))


# ---------------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------------


class StyleGAN3Generator(GeneratorBase):
    """NVlabs ``networks_stylegan3.Generator``: same constructor arguments, same state dict."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: Mapping[str, Any] | None = None, **synthesis_kwargs: Any):
        mapping_config = _config_from_kwargs(MappingConfig, dict(mapping_kwargs or {}), "mapping")
        cfg = _config_from_kwargs(SynthesisConfig, synthesis_kwargs, "synthesis")
        sizes = int(z_dim), int(c_dim), int(w_dim), int(img_resolution), int(img_channels)
        _check_sizes(*sizes, mapping_config, cfg)  # before anything is allocated
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.img_resolution, self.img_channels = sizes
        self.img_height = self.img_width = self.img_resolution if cfg.resize is None else cfg.resize
        self.mapping_config: MappingConfig = mapping_config
        self.synthesis_config: SynthesisConfig = cfg
        self.num_ws = cfg.num_layers + 2
        self.output_scale = cfg.output_scale
        self.architecture = "stylegan3-r" if cfg.use_radial_filters else "stylegan3-t"
        # Same construction order as NVlabs, so state_dict() lists keys in the same order.
        self.synthesis = SynthesisNetwork(self.w_dim, self.img_resolution, self.img_channels, cfg)
        # Registered directly: add_module refuses a name that a method (``mapping``) already uses.
        self._modules["mapping"] = MappingNetwork(self.z_dim, self.c_dim, self.w_dim, self.num_ws,
                                                  **dataclasses.asdict(self.mapping_config))
        self.layers = self._layer_infos()
        self.eval()

    def _layer_infos(self) -> list[LayerInfo]:
        layers: list[SynthesisLayer] = [getattr(self.synthesis, name) for name in self.synthesis.layer_names]
        # The image spans img_resolution samples at the last layer's rate, centred in every layer.
        image_extent = self.img_resolution / layers[-1].out_sampling_rate

        def margin(size: int, sampling_rate: float) -> float:
            return (size - sampling_rate * image_extent) / 2

        source = self.synthesis.input
        infos = [LayerInfo("input", source.channels, source.size, source.size, (0,), kind="input",
                           margin=margin(source.size, source.sampling_rate))]
        for k, (name, layer) in enumerate(zip(self.synthesis.layer_names, layers), start=1):
            infos.append(LayerInfo(name, layer.out_channels, layer.out_size, layer.out_size, (k,),
                                   kind="torgb" if layer.is_torgb else "conv",
                                   margin=margin(layer.out_size, layer.out_sampling_rate)))
        return infos

    # ---- mapping -------------------------------------------------------------------------------
    # The submodule is registered as "mapping" (NVlabs' state-dict prefix); this method shadows
    # attribute access to it and calls it.
    def mapping(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_emas: bool = False) -> Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        if self.c_dim > 0 and (c is None or c.shape != (z.shape[0], self.c_dim)):
            got = None if c is None else tuple(c.shape)
            raise ValueError(f"this generator is conditional: c must have shape "
                             f"({z.shape[0]}, {self.c_dim}), got {got}")
        return self._modules["mapping"](z, c, truncation_psi=truncation_psi,
                                        truncation_cutoff=truncation_cutoff, update_emas=update_emas)

    @property
    def w_avg(self) -> Tensor:
        return self._modules["mapping"].w_avg

    @property
    def input_transform(self) -> Tensor:
        """The 3x3 inverse transform applied to the Fourier input (NVlabs ``input.transform``)."""
        return self.synthesis.input.transform

    def set_input_transform(self, matrix: Tensor | np.ndarray) -> None:
        """Set the inverse image transform (3x3; translation in units of the image's width)."""
        matrix = torch.as_tensor(np.asarray(matrix, dtype=np.float32))
        if matrix.shape != (3, 3):
            raise ValueError(f"input transform must be 3x3, got {tuple(matrix.shape)}")
        self.synthesis.input.transform.copy_(matrix)

    # ---- synthesis -----------------------------------------------------------------------------
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
        del noise_seed, noise_maps  # StyleGAN3 has no noise inputs
        if compute_dtype != torch.float32:
            raise ValueError(f"StyleGAN3 synthesis computes in float32 only, not {compute_dtype}")
        num_layers = len(self.layers)
        stop = num_layers if stop is None else stop
        self._check_synthesize_args(ws, start, state, stop, taps, hooks, noise_mode)
        hooks = hooks or {}
        style_offsets = style_offsets or {}
        self._check_style_offsets(style_offsets, ws.shape[0])
        ws = ws.to(torch.float32)
        x = state["x"] if start > 0 else None
        states: dict[int, LayerState] = {}
        tapped: dict[str, Tensor] = {}
        for k in range(start, stop):
            if k in keep_states:
                states[k] = {} if x is None else {"x": x}
            name = self.layers[k].name
            x = self._run_layer(k, x, ws, style_offsets.get(name))
            if name in hooks:
                x = hooks[name](x)
            if name in taps:
                tapped[name] = x
        if stop in keep_states and x is not None:
            states[stop] = {"x": x}
        if stop < num_layers:
            image = ws.new_empty((ws.shape[0], 0, 0, 0))
        else:
            image = (x * self.output_scale if self.output_scale != 1 else x).to(torch.float32)
            if self.synthesis_config.resize is not None:
                image = ops.resize_square(image, self.synthesis_config.resize)
        return SynthesisOutput(image=image, taps=tapped, states=states)

    def _run_layer(self, k: int, x: Tensor | None, ws: Tensor, style_offset: Tensor | None) -> Tensor:
        if k == 0:
            return per_sample(lambda i: self.synthesis.input(ws[i, 0]), runs_on(ws))
        return getattr(self.synthesis, self.layers[k].name)(x, ws[:, k], style_offset=style_offset)

    def style_sizes(self) -> dict[str, int]:
        """Every layer but the input (whose affine turns w into a transform, not styles)."""
        return {info.name: getattr(self.synthesis, info.name).affine.weight.shape[0]
                for info in self.layers[1:]}

    def _check_synthesize_args(self, ws: Tensor, start: int, state: LayerState | None, stop: int,
                               taps: Collection[str], hooks: Mapping[str, LayerHook] | None,
                               noise_mode: str) -> None:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if not 0 <= start <= stop <= len(self.layers):
            raise ValueError(f"need 0 <= start ({start}) <= stop ({stop}) <= {len(self.layers)}")
        if start > 0 and (state is None or "x" not in state):
            raise ValueError(f"starting at layer {start} needs the state recorded before it")
        for name in [*taps, *(hooks or {})]:
            self.layer_index(name)  # raises KeyError naming the known layers

    # ---- persistence ---------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return dict(z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim,
                    img_resolution=self.img_resolution, img_channels=self.img_channels,
                    mapping_kwargs=dataclasses.asdict(self.mapping_config),
                    **dataclasses.asdict(self.synthesis_config))


__all__ = ["StyleGAN3Generator", "MappingConfig", "SynthesisConfig", "layer_schedule",
           "design_lowpass_filter", "kaiser_lowpass", "jinc_lowpass", "bessel_j1", "filtered_lrelu",
           "filtered_lrelu_reference", "modulated_conv2d"]
