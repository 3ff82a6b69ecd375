"""ops.py against naive references written differently: numpy loops in float64, per-sample convs."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganinterface.models import ops


# ---- naive references ---------------------------------------------------------------------------
def naive_upfirdn(x, f, up=(1, 1), down=(1, 1), pad=(0, 0, 0, 0), gain=1.0, flip_filter=False):
    """Zero insertion, padding/cropping, true 2-D convolution and decimation, as explicit loops.

    x: (N, C, H, W) array, f: 2-D (fh, fw) or 1-D separable taps; pad = (x0, x1, y0, y1).
    """
    x = np.asarray(x, dtype=np.float64)
    f = np.asarray(f, dtype=np.float64)
    if f.ndim == 1:
        f = np.outer(f, f)  # separable: the same taps on both axes
    f = f * gain
    if flip_filter:
        f = f[::-1, ::-1]
    upx, upy = up
    downx, downy = down
    x0, x1, y0, y1 = pad
    n, c, h, w = x.shape
    big = np.zeros((n, c, h * upy, w * upx))
    for i in range(h):
        for j in range(w):
            big[:, :, i * upy, j * upx] = x[:, :, i, j]
    padded = np.zeros((n, c, big.shape[2] + max(y0, 0) + max(y1, 0), big.shape[3] + max(x0, 0) + max(x1, 0)))
    padded[:, :, max(y0, 0):max(y0, 0) + big.shape[2], max(x0, 0):max(x0, 0) + big.shape[3]] = big
    padded = padded[:, :, max(-y0, 0):padded.shape[2] - max(-y1, 0), max(-x0, 0):padded.shape[3] - max(-x1, 0)]
    fh, fw = f.shape
    out_h, out_w = padded.shape[2] - fh + 1, padded.shape[3] - fw + 1
    out = np.zeros((n, c, out_h, out_w))
    for oy in range(out_h):
        for ox in range(out_w):
            window = padded[:, :, oy:oy + fh, ox:ox + fw]
            out[:, :, oy, ox] = (window * f[::-1, ::-1]).sum(axis=(2, 3))  # convolution: flipped kernel
    return out[:, :, ::downy, ::downx]


def naive_conv(x, w, pad=0, flip_weight=True):
    """Dense conv with explicit loops; flip_weight=True correlates (like torch), False convolves."""
    x = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    w = np.asarray(w, np.float64)
    if not flip_weight:
        w = w[:, :, ::-1, ::-1]
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    out = np.zeros((n, o, h - kh + 1, wd - kw + 1))
    for oy in range(out.shape[2]):
        for ox in range(out.shape[3]):
            out[:, :, oy, ox] = np.einsum("nihw,oihw->no", x[:, :, oy:oy + kh, ox:ox + kw], w)
    return out


FIR = [1, 3, 3, 1]


def fir2d(taps=FIR):
    f = np.outer(taps, taps).astype(np.float64)
    return f / f.sum()


# ---- setup_filter -------------------------------------------------------------------------------
def test_setup_filter_normalises_and_takes_outer_product():
    f = ops.setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and f.dtype == torch.float32
    np.testing.assert_allclose(f.numpy(), fir2d(), rtol=1e-6)


def test_setup_filter_is_separable_from_eight_taps_and_applies_gain():
    taps = [1, 2, 3, 4, 4, 3, 2, 1]
    f = ops.setup_filter(taps, gain=4)
    assert f.ndim == 1
    np.testing.assert_allclose(f.numpy(), np.array(taps) / sum(taps) * 4 ** 0.5, rtol=1e-6)


def test_setup_filter_rejects_empty():
    with pytest.raises(ValueError):
        ops.setup_filter([])


# ---- upfirdn2d ------------------------------------------------------------------------------------
@pytest.mark.parametrize("up, down, pad, flip, gain", [
    ((1, 1), (1, 1), (1, 2, 2, 1), False, 1.0),
    ((2, 2), (1, 1), (2, 1, 2, 1), False, 4.0),
    ((2, 1), (1, 1), (0, 3, 1, -1), True, 1.5),
    ((1, 1), (2, 2), (1, 1, 1, 1), False, 1.0),
    ((2, 2), (2, 1), (-1, 2, 3, 0), True, 2.0),
    ((4, 3), (1, 1), (5, -2, 0, 4), False, 1.0),  # up-sampled: window partly padded, partly cropped
    ((2, 2), (1, 1), (-3, -3, -2, -2), True, 1.0),  # up-sampled: cropped on every side
])
def test_upfirdn2d_matches_explicit_loops(up, down, pad, flip, gain):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 6))
    f = rng.standard_normal((4, 3))  # asymmetric, non-square: catches flips and axis mix-ups
    got = ops.upfirdn2d(torch.tensor(x, dtype=torch.float32), torch.tensor(f, dtype=torch.float32),
                        up=up, down=down, padding=list(pad), flip_filter=flip, gain=gain)
    # NVlabs applies gain ** (ndim / 2) to the filter, i.e. gain once for a 2-D filter.
    want = naive_upfirdn(x, f, up, down, pad, gain=gain, flip_filter=flip)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)


@pytest.mark.parametrize("pad", [(2, 1, 2, 1), (3, 0, 1, 2)])
def test_upfirdn2d_up_sampling_keeps_channels_last_inputs_and_adds_the_bias_after_filtering(pad):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 5, 6))
    f = rng.standard_normal((4, 4))
    bias = rng.standard_normal(3)
    got = ops._upfirdn2d(torch.tensor(x, dtype=torch.float32).contiguous(memory_format=torch.channels_last),
                         torch.tensor(f, dtype=torch.float32), (2, 2), (1, 1), pad, False, 4.0,
                         torch.tensor(bias, dtype=torch.float32))
    want = naive_upfirdn(x, f, (2, 2), (1, 1), pad, gain=4.0) + bias[None, :, None, None]
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)


def test_upfirdn2d_separable_filter_equals_outer_product():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 6, 5))
    taps = rng.standard_normal(8)
    got = ops.upfirdn2d(torch.tensor(x, dtype=torch.float32), torch.tensor(taps, dtype=torch.float32),
                        up=2, padding=[4, 3, 4, 3], gain=4)
    # A 1-D filter gets gain ** 0.5 per axis, so the whole 2-D response is scaled by gain.
    want = naive_upfirdn(x, taps, (2, 2), (1, 1), (4, 3, 4, 3), gain=4.0)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)


def test_upsample2d_keeps_a_constant_image_constant_inside():
    x = torch.full((1, 1, 6, 5), 2.5)
    y = ops.upsample2d(x, ops.setup_filter(FIR))
    assert y.shape == (1, 1, 12, 10)
    np.testing.assert_allclose(y[0, 0, 2:-2, 2:-2].numpy(), 2.5, rtol=1e-6)


def test_downsample2d_shape_and_dc_gain():
    x = torch.full((1, 2, 8, 12), -1.0)
    y = ops.downsample2d(x, ops.setup_filter(FIR))
    assert y.shape == (1, 2, 4, 6)
    np.testing.assert_allclose(y[0, :, 1:-1, 1:-1].numpy(), -1.0, rtol=1e-6)


def test_filter2d_keeps_size_and_matches_loops():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 1, 5, 7))
    f = fir2d()
    got = ops.filter2d(torch.tensor(x, dtype=torch.float32), torch.tensor(f, dtype=torch.float32))
    want = naive_upfirdn(x, f, pad=(2, 1, 2, 1))
    assert got.shape == x.shape
    np.testing.assert_allclose(got.numpy(), want, atol=1e-6)


# ---- bias_act, normalize_2nd_moment --------------------------------------------------------------
def test_bias_act_lrelu_default_gain_and_clamp():
    x = torch.linspace(-3, 3, 24).reshape(2, 3, 2, 2)
    b = torch.tensor([0.5, -1.0, 0.0])
    got = ops.bias_act(x, b, act="lrelu", clamp=2.0)
    xb = x.numpy() + b.numpy().reshape(1, 3, 1, 1)
    want = np.clip(np.where(xb >= 0, xb, 0.2 * xb) * math.sqrt(2), -2, 2)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)


def test_bias_act_linear_along_last_dim():
    x = torch.randn(4, 5)
    b = torch.randn(5)
    got = ops.bias_act(x, b, dim=1, act="linear", gain=3.0)
    np.testing.assert_allclose(got.numpy(), (x.numpy() + b.numpy()) * 3.0, rtol=1e-6)


def test_normalize_2nd_moment_gives_unit_mean_square():
    x = torch.randn(3, 17) * 5
    y = ops.normalize_2nd_moment(x)
    np.testing.assert_allclose(y.square().mean(dim=1).numpy(), 1.0, rtol=1e-5)
    np.testing.assert_allclose((y / x).std(dim=1).numpy(), 0.0, atol=1e-6)  # a pure per-row scale


# ---- conv2d_resample -----------------------------------------------------------------------------
@pytest.mark.parametrize("flip_weight", [True, False])
def test_conv2d_resample_up2_equals_upsample_then_conv(flip_weight):
    """NVlabs semantics: pad once, up-sample with the FIR filter (gain up**2), then convolve."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 3, 4, 5))
    w = rng.standard_normal((2, 3, 3, 3))
    got = ops.conv2d_resample(torch.tensor(x, dtype=torch.float32), torch.tensor(w, dtype=torch.float32),
                              f=ops.setup_filter(FIR), up=2, padding=1, flip_weight=flip_weight)
    upsampled = naive_upfirdn(x, fir2d(), up=(2, 2), pad=(1 + 2, 1 + 1, 1 + 2, 1 + 1), gain=4.0)
    want = naive_conv(upsampled, w, flip_weight=flip_weight)
    assert got.shape == (1, 2, 8, 10)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-4)


@pytest.mark.parametrize("up, down, kernel", [(1, 1, 3), (2, 1, 3), (2, 1, 1), (1, 2, 3), (1, 2, 1)])
def test_conv2d_resample_bias_is_added_at_the_end(up, down, kernel):
    torch.manual_seed(7)
    x, w, b = torch.randn(1, 3, 8, 8), torch.randn(4, 3, kernel, kernel), torch.randn(4)
    kwargs = dict(f=ops.setup_filter(FIR), up=up, down=down, padding=kernel // 2)
    with_bias = ops.conv2d_resample(x, w, bias=b, **kwargs)
    torch.testing.assert_close(with_bias, ops.conv2d_resample(x, w, **kwargs) + b.reshape(1, -1, 1, 1),
                               atol=1e-5, rtol=1e-5)


def test_conv2d_resample_1x1_up2_and_down2():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 4, 4))
    w = rng.standard_normal((3, 2, 1, 1))
    xt, wt, f = torch.tensor(x, dtype=torch.float32), torch.tensor(w, dtype=torch.float32), ops.setup_filter(FIR)
    up = ops.conv2d_resample(xt, wt, f=f, up=2)
    want_up = naive_conv(naive_upfirdn(x, fir2d(), up=(2, 2), pad=(2, 1, 2, 1), gain=4.0), w)
    np.testing.assert_allclose(up.numpy(), want_up, atol=1e-5)
    down = ops.conv2d_resample(xt, wt, f=f, down=2)
    want_down = naive_conv(naive_upfirdn(x, fir2d(), down=(2, 2), pad=(1, 1, 1, 1)), w)
    np.testing.assert_allclose(down.numpy(), want_down, atol=1e-5)


def test_conv2d_resample_3x3_down2():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 8, 6))
    w = rng.standard_normal((2, 2, 3, 3))
    got = ops.conv2d_resample(torch.tensor(x, dtype=torch.float32), torch.tensor(w, dtype=torch.float32),
                              f=ops.setup_filter(FIR), down=2, padding=1)
    filtered = naive_upfirdn(x, fir2d(), pad=(1 + 1, 1 + 1, 1 + 1, 1 + 1))
    want = naive_conv(filtered, w)[:, :, ::2, ::2]
    np.testing.assert_allclose(got.numpy(), want, atol=1e-4)


# ---- modulated_conv2d ----------------------------------------------------------------------------
def per_sample_reference(x, weight, styles, noise, up, demodulate, flip_weight):
    """Modulate/demodulate each sample's weight explicitly, then an ordinary (resampling) conv."""
    outs = []
    for n in range(x.shape[0]):
        wn = weight.double() * styles[n].double().reshape(1, -1, 1, 1)
        if demodulate:
            wn = wn / torch.sqrt(wn.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        xn = x[n:n + 1].double()
        if up == 1:
            if not flip_weight:
                wn = wn.flip([2, 3])
            outs.append(F.conv2d(xn, wn, padding=weight.shape[-1] // 2))
        else:
            upsampled = naive_upfirdn(xn.numpy(), fir2d(), up=(2, 2), pad=(3, 2, 3, 2), gain=4.0)
            outs.append(torch.from_numpy(naive_conv(upsampled, wn.numpy(), flip_weight=flip_weight)))
    out = torch.cat(outs)
    if noise is not None:
        out = out + noise.double()
    return out


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("up, demodulate, flip_weight", [(1, True, True), (1, False, True), (2, True, False)])
def test_modulated_conv2d_matches_per_sample_conv(fused, up, demodulate, flip_weight):
    torch.manual_seed(6)
    x = torch.randn(3, 4, 5, 6)
    weight = torch.randn(5, 4, 3, 3)
    styles = torch.randn(3, 4)
    noise = torch.randn(3, 1, 5 * up, 6 * up)
    got = ops.modulated_conv2d(x, weight, styles, noise=noise, up=up, padding=1,
                               resample_filter=ops.setup_filter(FIR) if up > 1 else None,
                               demodulate=demodulate, flip_weight=flip_weight, fused_modconv=fused)
    want = per_sample_reference(x, weight, styles, noise, up, demodulate, flip_weight)
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=2e-4, rtol=1e-4)


def test_modulated_conv2d_rejects_mismatched_styles():
    with pytest.raises(ValueError, match="styles"):
        ops.modulated_conv2d(torch.randn(2, 4, 5, 5), torch.randn(3, 4, 3, 3), torch.randn(2, 5))
