"""Pure-PyTorch versions of the NVlabs StyleGAN operations, with their argument names and numerics.

NVlabs ships CUDA kernels plus slow reference fallbacks; these are written for CPU (and any other
device) from the documented semantics:

* ``upfirdn2d``: zero-insert up-sampling, padding (negative = crop), FIR filtering, down-sampling.
* ``bias_act``: bias, activation, gain, clamp in one call.
* ``conv2d_resample``: a convolution fused with FIR up/down-sampling, padding applied once.
* ``modulated_conv2d``: StyleGAN2's style-modulated convolution with demodulation, either fused
  (one grouped convolution with per-sample weights) or not (scale activations before and after).

Filters follow NVlabs' convention: ``f`` is float32, 1-D (separable) or 2-D, prepared by
``setup_filter``; ``flip_filter=False`` means true convolution, so the filter is flipped before
``torch.nn.functional.conv2d`` (which correlates).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

Tensor = torch.Tensor
Padding = int | Sequence[int]


@dataclass(frozen=True)
class Activation:
    func: Callable[[Tensor, float], Tensor]
    def_alpha: float
    def_gain: float


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, alpha: x, 0.0, 1.0),
    "relu": Activation(lambda x, alpha: F.relu(x), 0.0, math.sqrt(2)),
    "lrelu": Activation(lambda x, alpha: F.leaky_relu(x, alpha), 0.2, math.sqrt(2)),
    "tanh": Activation(lambda x, alpha: torch.tanh(x), 0.0, 1.0),
    "sigmoid": Activation(lambda x, alpha: torch.sigmoid(x), 0.0, 1.0),
    "elu": Activation(lambda x, alpha: F.elu(x), 0.0, 1.0),
    "selu": Activation(lambda x, alpha: F.selu(x), 0.0, 1.0),
    "softplus": Activation(lambda x, alpha: F.softplus(x), 0.0, 1.0),
    "swish": Activation(lambda x, alpha: torch.sigmoid(x) * x, 0.0, math.sqrt(2)),
}


# ---- small argument parsers -------------------------------------------------------------------
def _scaling(factor: int | Sequence[int]) -> tuple[int, int]:
    """An int or (x, y) pair -> (x, y)."""
    if isinstance(factor, int):
        return factor, factor
    fx, fy = factor
    return int(fx), int(fy)


def _padding(padding: Padding) -> tuple[int, int, int, int]:
    """An int, (x, y) or (x0, x1, y0, y1) -> (x0, x1, y0, y1)."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    if len(padding) == 2:
        px, py = padding
        return px, px, py, py
    px0, px1, py0, py1 = padding
    return px0, px1, py0, py1


def _filter_size(f: Tensor | None) -> tuple[int, int]:
    """(width, height) of a filter; a separable filter is square."""
    if f is None:
        return 1, 1
    return int(f.shape[-1]), int(f.shape[0])


# ---- filters ----------------------------------------------------------------------------------
def setup_filter(
    f,
    device: torch.device | str = "cpu",
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1,
    separable: bool | None = None,
) -> Tensor:
    """A list/array/tensor -> float32 FIR filter for ``upfirdn2d``.

    1-D taps become a 2-D outer product unless ``separable`` (default: separable when the 1-D
    filter has 8 or more taps, as NVlabs does).  ``normalize`` makes the taps sum to one.
    """
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim not in (0, 1, 2) or f.numel() == 0:
        raise ValueError(f"a filter must be a non-empty scalar, 1-D or 2-D array, got shape {tuple(f.shape)}")
    if f.ndim == 0:
        f = f.reshape(1)
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)


def _pad_or_crop(x: Tensor, px0: int, px1: int, py0: int, py1: int) -> Tensor:
    if px0 < 0 or px1 < 0 or py0 < 0 or py1 < 0:
        h, w = x.shape[2], x.shape[3]
        x = x[:, :, max(-py0, 0) : h - max(-py1, 0), max(-px0, 0) : w - max(-px1, 0)]
    if px0 > 0 or px1 > 0 or py0 > 0 or py1 > 0:
        x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    return x


def _depthwise(x: Tensor, kernel: Tensor, padding: tuple[int, int] = (0, 0), bias: Tensor | None = None) -> Tensor:
    """Correlate every channel of x with the same 2-D kernel (symmetric zero padding (y, x))."""
    return F.conv2d(x, depthwise_weight(kernel, x), bias=bias, padding=list(padding), groups=x.shape[1])


def full_kernel(f: Tensor | None) -> Tensor:
    """A FIR filter as one 2-D kernel: None is the identity, a 1-D (separable) filter its outer
    product with itself."""
    if f is None:
        return torch.ones((1, 1))
    return torch.outer(f, f) if f.ndim == 1 else f


def depthwise_weight(kernel: Tensor, x: Tensor) -> Tensor:
    """A 2-D kernel as the (C, 1, kh, kw) weight of a depthwise convolution of ``x``, on its device,
    in its dtype and memory format (else the convolution converts the weight at every call)."""
    kernel = kernel.to(device=x.device, dtype=x.dtype)
    weight = kernel[None, None].expand(x.shape[1], 1, *kernel.shape).contiguous()
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        weight = weight.to(memory_format=torch.channels_last)
    return weight


def upfirdn2d(
    x: Tensor,
    f: Tensor | None,
    up: int | Sequence[int] = 1,
    down: int | Sequence[int] = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> Tensor:
    """Up-sample (zero insertion), pad/crop, FIR-filter and down-sample a batch of images.

    ``padding`` is in up-sampled pixels, ``(x0, x1, y0, y1)``; negative values crop.  ``gain``
    scales the signal (NVlabs applies ``gain ** (f.ndim / 2)`` to the filter, so a separable
    filter gets the square root once per axis).
    """
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects a 4-D tensor, got shape {tuple(x.shape)}")
    return _upfirdn2d(x, f, _scaling(up), _scaling(down), _padding(padding), flip_filter, gain)


def _upfirdn2d(x: Tensor, f: Tensor | None, up: tuple[int, int], down: tuple[int, int],
               pads: tuple[int, int, int, int], flip_filter: bool, gain: float,
               bias: Tensor | None = None) -> Tensor:
    """upfirdn2d with parsed arguments; ``bias`` (per channel) is added after filtering."""
    if f is None:
        f = torch.ones((1, 1), dtype=torch.float32, device=x.device)
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, pads
    if upx > 1 or upy > 1:
        if downx == 1 and downy == 1:
            return _upsample_transposed(x, f, up, pads, flip_filter, gain, bias)
        x = _upsample_transposed(x, f, up, pads, flip_filter, gain, None)[:, :, ::downy, ::downx]
        return x if bias is None else x + bias.to(x.dtype)[:, None, None]
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        conv_padding = (py0, px0)  # let the convolution pad: saves a copy of the image
    else:
        x = _pad_or_crop(x, px0, px1, py0, py1)
        conv_padding = (0, 0)

    f = f * (gain ** (f.ndim / 2))
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = _depthwise(x, f, conv_padding, bias)
    else:
        x = _depthwise(x, f[None, :], (0, conv_padding[1]))
        x = _depthwise(x, f[:, None], (conv_padding[0], 0), bias)
    if downx > 1 or downy > 1:
        x = x[:, :, ::downy, ::downx]
    return x


IMAGE_CHANNELS = 4  # up to this many planar channels are up-sampled interleaved (an image)


def _upsample_transposed(x: Tensor, f: Tensor, up: tuple[int, int], pads: tuple[int, int, int, int],
                         flip_filter: bool, gain: float, bias: Tensor | None) -> Tensor:
    """Zero insertion, padding and filtering as one depthwise transposed convolution of stride
    ``up``: it never multiplies the inserted zeros (3-4x faster than filtering the zero-stuffed
    image on the CPU; equal up to rounding).  A transposed convolution is the full convolution
    of the input with its kernel, so the kernel is the filter itself (a correlation would take it
    flipped), and the padding becomes a window on the full result."""
    (upx, upy), (px0, px1, py0, py1) = up, pads
    kernel = full_kernel(f) * gain
    if flip_filter:
        kernel = kernel.flip([0, 1])
    kh, kw = kernel.shape
    channels = x.shape[1]
    # An image: torch's depthwise transposed convolution of a few planar channels is 7-14x slower
    # than of the same pixels interleaved (3 x 512 x 512: 42 ms, 9 ms with both conversions), and
    # the result is the same.
    interleave = channels <= IMAGE_CHANNELS and not x.is_contiguous(memory_format=torch.channels_last)
    if interleave:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = depthwise_weight(kernel, x)
    # The window on the full result: left px0 - (kw - 1), right px1 + upx - kw (negative = crop).
    left_x, right_x, left_y, right_y = px0 - (kw - 1), px1 + upx - kw, py0 - (kh - 1), py1 + upy - kh
    crop_x, crop_y = max(min(-left_x, -right_x), 0), max(min(-left_y, -right_y), 0)
    rest = (left_x + crop_x, right_x + crop_x, left_y + crop_y, right_y + crop_y)
    exact = rest == (0, 0, 0, 0)
    x = F.conv_transpose2d(x, weight, bias=bias if exact else None, stride=(upy, upx),
                           padding=(crop_y, crop_x), groups=channels)
    if not exact:
        x = _pad_or_crop(x, *rest)
        x = x if bias is None else x + bias.to(x.dtype)[:, None, None]
    return x.contiguous() if interleave else x


def filter2d(x: Tensor, f: Tensor | None, padding: Padding = 0, flip_filter: bool = False, gain: float = 1) -> Tensor:
    """FIR-filter keeping the size (padding is on top of the size-preserving padding)."""
    px0, px1, py0, py1 = _padding(padding)
    fw, fh = _filter_size(f)
    pad = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=pad, flip_filter=flip_filter, gain=gain)


def upsample2d(
    x: Tensor, f: Tensor | None, up: int | Sequence[int] = 2, padding: Padding = 0,
    flip_filter: bool = False, gain: float = 1,
) -> Tensor:
    """Up-sample by ``up`` with FIR filter ``f``; the output is exactly ``up`` times the input."""
    upx, upy = _scaling(up)
    px0, px1, py0, py1 = _padding(padding)
    fw, fh = _filter_size(f)
    pad = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=up, padding=pad, flip_filter=flip_filter, gain=gain * upx * upy)


def downsample2d(
    x: Tensor, f: Tensor | None, down: int | Sequence[int] = 2, padding: Padding = 0,
    flip_filter: bool = False, gain: float = 1,
) -> Tensor:
    """Down-sample by ``down`` with FIR filter ``f``; the output is exactly the input / ``down``."""
    downx, downy = _scaling(down)
    px0, px1, py0, py1 = _padding(padding)
    fw, fh = _filter_size(f)
    pad = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter, gain=gain)


def resize_square(image: Tensor, size: int) -> Tensor:
    """Forks' final ``imresize`` (DragGAN): to ``size`` x ``size``, bilinear when the height grows,
    area-averaged when it shrinks, untouched when the height is already ``size``."""
    height = image.shape[2]
    if size > height:
        return F.interpolate(image, [size, size], mode="bilinear")
    if size < height:
        return F.interpolate(image, [size, size], mode="area")
    return image


# ---- bias + activation ------------------------------------------------------------------------
def bias_act(
    x: Tensor,
    b: Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> Tensor:
    """``clamp(act(x + b) * gain)``; ``gain`` defaults to the activation's (sqrt 2 for lrelu)."""
    spec = ACTIVATIONS[act]
    alpha = float(alpha if alpha is not None else spec.def_alpha)
    gain = float(gain if gain is not None else spec.def_gain)
    if b is not None:
        shape = [-1 if i == dim else 1 for i in range(x.ndim)]
        x = x + b.to(x.dtype).reshape(shape)
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Scale so that the mean square along ``dim`` is one."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


# ---- convolution with resampling --------------------------------------------------------------
def _conv(x: Tensor, w: Tensor, stride: int = 1, padding: Sequence[int] = (0, 0), groups: int = 1,
          transpose: bool = False, flip_weight: bool = True, bias: Tensor | None = None) -> Tensor:
    """conv2d / conv_transpose2d; ``flip_weight=False`` turns torch's correlation into convolution."""
    if not flip_weight and (w.shape[2] > 1 or w.shape[3] > 1):
        w = w.flip([2, 3])
    if transpose:
        return F.conv_transpose2d(x, w, bias=bias, stride=stride, padding=list(padding), groups=groups)
    return F.conv2d(x, w, bias=bias, stride=stride, padding=list(padding), groups=groups)


def _transposed_group_weight(w: Tensor, groups: int) -> Tensor:
    """[O, I/g, kh, kw] conv weight -> the [I, O/g, kh, kw] layout conv_transpose2d expects."""
    out_channels, in_per_group, kh, kw = w.shape
    if groups == 1:
        return w.transpose(0, 1)
    w = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
    return w.reshape(groups * in_per_group, out_channels // groups, kh, kw)


def _resample_padding(f: Tensor | None, up: int, down: int, padding: Padding) -> list[int]:
    """Padding w.r.t. the up-sampled image, grown so the FIR filter keeps the size exact."""
    fw, fh = _filter_size(f)
    px0, px1, py0, py1 = _padding(padding)
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    return [px0, px1, py0, py1]


def conv2d_resample(
    x: Tensor,
    w: Tensor,
    f: Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
    bias: Tensor | None = None,
) -> Tensor:
    """2-D convolution with optional FIR up/down-sampling; ``padding`` is w.r.t. the up-sampled image.

    ``bias`` (an extension to NVlabs' signature) is added per output channel at the very end,
    inside the last convolution where possible.
    """
    _, _, kh, kw = w.shape
    px0, px1, py0, py1 = pads = _resample_padding(f, up, down, padding)
    pads = tuple(pads)

    if up > 1 and down == 1 and kw == 1 and kh == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return _upfirdn2d(x, f, (up, up), (1, 1), pads, flip_filter, up**2, bias)
    if up > 1:
        # Zero insertion + convolution is a strided transposed convolution; the FIR filter follows.
        px0, px1, py0, py1 = px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv(x, _transposed_group_weight(w, groups), stride=up, padding=(pyt, pxt), groups=groups,
                  transpose=True, flip_weight=not flip_weight)
        fir_pads = (px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt)
        if down == 1:
            return _upfirdn2d(x, f, (1, 1), (1, 1), fir_pads, flip_filter, up**2, bias)
        x = _upfirdn2d(x, f, (1, 1), (1, 1), fir_pads, flip_filter, up**2)
        return _upfirdn2d(x, f, (1, 1), (down, down), (0, 0, 0, 0), flip_filter, 1, bias)
    if down > 1 and kw == 1 and kh == 1:
        x = _upfirdn2d(x, f, (1, 1), (down, down), pads, flip_filter, 1)
        return _conv(x, w, groups=groups, flip_weight=flip_weight, bias=bias)
    if down > 1:
        x = _upfirdn2d(x, f, (1, 1), (1, 1), pads, flip_filter, 1)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight, bias=bias)
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=(py0, px0), groups=groups, flip_weight=flip_weight, bias=bias)
    x = _pad_or_crop(x, px0, px1, py0, py1)
    return _conv(x, w, groups=groups, flip_weight=flip_weight, bias=bias)


# ---- modulated convolution ---------------------------------------------------------------------
def modulated_conv2d(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    noise: Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    resample_filter: Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
    energy: Tensor | None = None,
) -> Tensor:
    """StyleGAN2 modulated convolution: weight * style per input channel, optionally demodulated.

    ``x`` [N, I, H, W], ``weight`` [O, I, kh, kw], ``styles`` [N, I].  ``noise`` is added after
    demodulation.  ``fused_modconv`` computes per-sample weights and runs one grouped convolution
    (cheap for batch 1); otherwise the activations are scaled before and after a shared convolution.
    ``energy`` [O, I], the float32 weight's squares summed over its taps, may be passed by a caller that
    keeps it (the shared convolution's demodulation needs nothing else of the weight).
    """
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    if styles.shape != (batch_size, in_channels) or x.shape[1] != in_channels:
        raise ValueError(
            f"modulated_conv2d: x {tuple(x.shape)}, weight {tuple(weight.shape)} and styles "
            f"{tuple(styles.shape)} do not fit together")

    if x.dtype == torch.float16 and demodulate:
        # Pre-normalise so float16 cannot overflow (demodulation removes the scale again).
        weight = weight * (1 / np.sqrt(in_channels * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    if not fused_modconv:
        if demodulate:  # sum over i, taps of (weight * style)^2, without forming the modulated weight
            energy = weight.square().sum(dim=[2, 3]) if energy is None else energy
            dcoefs = (styles.square() @ energy.T + 1e-8).rsqrt()
        x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding,
                            flip_weight=flip_weight)
        if demodulate:
            x = x * dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x

    w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, -1, 1, 1)
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        w = w * dcoefs.reshape(batch_size, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding,
                        groups=batch_size, flip_weight=flip_weight)
    x = x.reshape(batch_size, -1, *x.shape[2:])
    if noise is not None:
        x = x + noise
    return x
