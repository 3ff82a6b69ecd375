"""StyleGAN3 generator: filter design, primitive ops, layer API, equivariance, config round trip.

Parity with NVlabs' own code is checked outside the suite (their code cannot be committed); here every
numerical piece is compared with an independent, naively written computation.
"""

import decimal
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganinterface.models.stylegan3 import (StyleGAN3Generator, SynthesisConfig, bessel_j1,
                                           design_lowpass_filter, filtered_lrelu,
                                           filtered_lrelu_reference, jinc_lowpass,
                                           kaiser_lowpass, layer_schedule, modulated_conv2d)

TINY = dict(z_dim=7, c_dim=0, w_dim=6, img_resolution=32, img_channels=3, channel_base=256,
            channel_max=16, num_layers=6)
TINY_R = dict(TINY, conv_kernel=1, use_radial_filters=True, channel_base=512)


@pytest.fixture(autouse=True)
def _no_autograd():
    with torch.no_grad():  # nothing here needs gradients; building graphs only slows the tests
        yield


def _randomize(generator: StyleGAN3Generator) -> StyleGAN3Generator:
    """Make the parts that start trivial (biases, EMAs, w_avg, input affine) non-trivial."""
    with torch.no_grad():
        for name, tensor in generator.state_dict().items():
            if name.endswith("magnitude_ema"):
                tensor.fill_(0.5 + torch.rand([]).item())
            elif name.endswith("w_avg") or name == "synthesis.input.affine.weight" or (
                    name.startswith("synthesis.L") and name.endswith(".bias")):
                tensor.copy_(torch.randn_like(tensor) * 0.3)
    return generator


def _ws(generator: StyleGAN3Generator, batch: int = 2, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, generator.num_ws, generator.w_dim, generator=gen)


@pytest.fixture(scope="module", params=["T", "R"])
def generator(request):
    torch.manual_seed(3)
    return _randomize(StyleGAN3Generator(**(TINY if request.param == "T" else TINY_R)))


# ---- filter design -------------------------------------------------------------------------------


def _bessel_i0_series(x: float) -> float:
    return sum(((x / 2) ** k / math.factorial(k)) ** 2 for k in range(60))


def _kaiser_beta_by_hand(numtaps, width, fs):
    atten = 2.285 * (numtaps - 1) * math.pi * width / (fs / 2) + 7.95
    if atten > 50:
        return 0.1102 * (atten - 8.7)
    return 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21) if atten > 21 else 0.0


def _kaiser_window_by_hand(numtaps, beta):
    ratios = [2 * n / (numtaps - 1) - 1 for n in range(numtaps)]
    return np.array([_bessel_i0_series(beta * math.sqrt(1 - r * r)) / _bessel_i0_series(beta)
                     for r in ratios])


def _kaiser_lowpass_by_hand(numtaps, cutoff, width, fs):
    """firwin's recipe written out: Kaiser's beta rule, I0 as a power series, sin(x)/x by hand."""
    nyquist = fs / 2
    window = _kaiser_window_by_hand(numtaps, _kaiser_beta_by_hand(numtaps, width, fs))
    taps = []
    for n in range(numtaps):
        phase = math.pi * cutoff / nyquist * (n - (numtaps - 1) / 2)
        taps.append(cutoff / nyquist * (math.sin(phase) / phase if phase else 1.0) * window[n])
    return np.array(taps) / sum(taps)


@pytest.mark.parametrize("numtaps,cutoff,width,fs", [(12, 2.0, 4.574, 16), (13, 5.5, 3.0, 24),
                                                     (24, 11.3, 9.0, 64), (12, 90.5, 60.0, 256)])
def test_kaiser_lowpass_matches_the_formula_written_out(numtaps, cutoff, width, fs):
    np.testing.assert_allclose(kaiser_lowpass(numtaps, cutoff, width, fs),
                               _kaiser_lowpass_by_hand(numtaps, cutoff, width, fs), atol=1e-12)


def test_kaiser_lowpass_matches_scipy_firwin_values():
    # scipy.signal.firwin(numtaps=13, cutoff=5.5, width=3.0, fs=24), printed with scipy 1.17.
    expected = [0.01559799461049261, 0.0282518515812785, -0.02762169498275912, -0.079483556315143,
                0.03710828815217949, 0.30222936176037024, 0.44783551038716257]
    expected = expected + expected[-2::-1]
    np.testing.assert_allclose(kaiser_lowpass(13, 5.5, 3.0, 24), expected, rtol=0, atol=1e-14)


def _response(taps: np.ndarray, freq: float, fs: float) -> float:
    n = np.arange(len(taps))
    return abs(np.sum(taps * np.exp(-2j * np.pi * freq / fs * n)))


def test_kaiser_lowpass_frequency_response():
    fs, cutoff, half_width = 64, 8.0, 4.0
    taps = kaiser_lowpass(24, cutoff, 2 * half_width, fs)
    assert _response(taps, 0, fs) == pytest.approx(1, abs=1e-12)
    assert _response(taps, cutoff, fs) == pytest.approx(0.5, abs=0.02)  # -6 dB at the cutoff
    assert _response(taps, cutoff / 2, fs) == pytest.approx(1, abs=0.02)
    stopband = np.linspace(cutoff + half_width, fs / 2, 200)
    assert max(_response(taps, f, fs) for f in stopband) < 0.02


def _bessel_j1_by_series(x: float) -> float:
    """J1(x) = sum_k (-1)^k (x/2)^(2k+1) / (k! (k+1)!), in 60-digit decimals (the terms cancel)."""
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        half = decimal.Decimal(x) / 2
        total = decimal.Decimal(0)
        for k in range(120):
            total += (-1) ** k * half ** (2 * k + 1) / (math.factorial(k) * math.factorial(k + 1))
        return float(total)


def test_bessel_j1_matches_power_series():
    xs = np.array([0.0, 1e-3, 0.5, 2.4048, 3.8317, 5.0001, 9.7, 17.3, 24.9, 31.0])
    np.testing.assert_allclose(bessel_j1(xs), [_bessel_j1_by_series(x) for x in xs], rtol=0, atol=1e-14)
    assert bessel_j1(xs.reshape(2, 5)).shape == (2, 5)


def test_jinc_lowpass_matches_bessel_integral_and_is_radial():
    numtaps, cutoff, width, fs = 12, 10.0, 12.0, 64
    taps = jinc_lowpass(numtaps, cutoff, width, fs)
    coords = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    radius = np.hypot(coords[None, :], coords[:, None])
    unique_radii, where = np.unique(radius, return_inverse=True)  # 21 distinct radii of 144 taps
    bessel = np.array([_bessel_j1_by_series(2 * np.pi * cutoff * r) for r in unique_radii])
    jinc = bessel[where].reshape(radius.shape) / (np.pi * radius)
    window = _kaiser_window_by_hand(numtaps, _kaiser_beta_by_hand(numtaps, width, fs))
    expected = jinc * np.outer(window, window)
    np.testing.assert_allclose(taps, expected / expected.sum(), rtol=0, atol=1e-14)
    assert taps.sum() == pytest.approx(1)
    np.testing.assert_allclose(taps, taps.T, atol=1e-15)
    # Radial frequency response: about the same along an axis and along the diagonal.
    ky, kx = np.meshgrid(np.arange(numtaps), np.arange(numtaps), indexing="ij")
    for freq in (2.0, 6.0, cutoff):
        along_axis = abs(np.sum(taps * np.exp(-2j * np.pi * freq / fs * kx)))
        diagonal = abs(np.sum(taps * np.exp(-2j * np.pi * freq / fs * (kx + ky) / np.sqrt(2))))
        assert along_axis == pytest.approx(diagonal, abs=0.03)


def test_design_lowpass_filter_identity_and_kinds():
    assert design_lowpass_filter(1, 3.0, 2.0, 16) is None
    assert design_lowpass_filter(12, 3.0, 2.0, 16).shape == (12,)
    assert design_lowpass_filter(12, 3.0, 2.0, 16, radial=True).shape == (12, 12)
    with pytest.raises(ValueError):
        kaiser_lowpass(12, 9.0, 2.0, 16)  # cutoff above Nyquist


# ---- layer schedule ---------------------------------------------------------------------------


def test_layer_schedule_matches_published_1024_models():
    # Layer names of NVlabs' stylegan3-t-ffhq-1024 and stylegan3-r-ffhq-1024 checkpoints.
    _, t_specs = layer_schedule(1024, 3, SynthesisConfig())
    assert [s.name for s in t_specs] == [
        "L0_36_512", "L1_36_512", "L2_52_512", "L3_52_512", "L4_84_512", "L5_148_512", "L6_148_512",
        "L7_276_323", "L8_276_203", "L9_532_128", "L10_1044_81", "L11_1044_51", "L12_1044_32",
        "L13_1024_32", "L14_1024_3"]
    _, r_specs = layer_schedule(1024, 3, SynthesisConfig(channel_base=65536, channel_max=1024,
                                                         conv_kernel=1, use_radial_filters=True))
    assert [s.name for s in r_specs][-6:] == [
        "L9_532_256", "L10_1044_161", "L11_1044_102", "L12_1044_64", "L13_1024_64", "L14_1024_3"]


def test_layer_paddings_and_filters_match_nvlabs_for_a_small_model():
    g = StyleGAN3Generator(**TINY)
    layers = [getattr(g.synthesis, name) for name in g.synthesis.layer_names]
    # Values printed by NVlabs' SynthesisNetwork for the same arguments.
    assert [layer.padding[:2] for layer in layers] == [(9, 8), (9, 8), (-6, -9), (9, 8), (9, 8),
                                                        (-11, -12), (0, 0)]
    assert [layer.up_factor for layer in layers] == [2, 2, 4, 2, 2, 2, 1]
    assert [layer.down_factor for layer in layers] == [2, 2, 2, 2, 2, 2, 1]
    keys = g.state_dict().keys()
    assert "synthesis.L6_32_3.up_filter" not in keys and "synthesis.L6_32_3.down_filter" not in keys
    assert g.state_dict()["synthesis.L2_52_16.up_filter"].shape == (24,)


def test_radial_filters_only_where_not_critically_sampled():
    g = StyleGAN3Generator(**TINY_R)
    shapes = [tuple(getattr(g.synthesis, name).down_filter.shape) for name in g.synthesis.layer_names[:-1]]
    assert shapes == [(12, 12)] * 4 + [(12,)] * 2  # the last two are critically sampled
    assert g.architecture == "stylegan3-r" and StyleGAN3Generator(**TINY).architecture == "stylegan3-t"


# ---- primitive ops against naive computations ---------------------------------------------------


def _convolve_naive(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """True 2-D convolution ('valid'), one output pixel at a time."""
    kh, kw = kernel.shape
    flipped = kernel[::-1, ::-1]
    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(x[i:i + kh, j:j + kw] * flipped)
    return out


def _pad_naive(x: np.ndarray, x0: int, x1: int, y0: int, y1: int) -> np.ndarray:
    x = np.pad(x, [(max(y0, 0), max(y1, 0)), (max(x0, 0), max(x1, 0))])
    return x[max(-y0, 0):x.shape[0] - max(-y1, 0), max(-x0, 0):x.shape[1] - max(-x1, 0)]


def _as_2d(f: torch.Tensor | None) -> np.ndarray:
    if f is None:
        return np.ones((1, 1))
    return np.outer(f.numpy(), f.numpy()) if f.ndim == 1 else f.numpy()


def _filtered_lrelu_naive(img, fu, fd, bias, up, down, padding, gain, slope, clamp):
    """One channel, written from the definition: zero-stuff, pad, convolve, lrelu, convolve, decimate."""
    img = img + bias
    upsampled = np.zeros((img.shape[0] * up, img.shape[1] * up))
    upsampled[::up, ::up] = img
    y = _convolve_naive(_pad_naive(upsampled, *padding), _as_2d(fu) * up * up)
    y = np.where(y >= 0, y, y * slope) * gain
    y = np.clip(y, -clamp, clamp)
    return _convolve_naive(y, _as_2d(fd))[::down, ::down]


FILTERED_LRELU_CASES = {  # up, down, padding (x0, x1, y0, y1), 2-D down filter, slope
    "up2-down2": (2, 2, (5, 4, 5, 4), False, 0.2),
    "up4-crop": (4, 2, (-2, -3, -1, -4), False, 0.2),
    "radial": (2, 2, (6, 3, 4, 5), True, 0.2),
    "no-down": (2, 1, (3, 3, 2, 7), False, 0.2),
    "to-rgb": (1, 1, (0, 0, 0, 0), False, 1.0),
}


@pytest.mark.parametrize("implementation", [filtered_lrelu, filtered_lrelu_reference])
@pytest.mark.parametrize("case", FILTERED_LRELU_CASES)
def test_filtered_lrelu_matches_naive(implementation, case):
    up, down, padding, radial, slope = FILTERED_LRELU_CASES[case]
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    bias = torch.randn(3, dtype=torch.float64)
    # Lopsided random taps, so a flipped filter would show.
    fu = torch.rand(4 * up, dtype=torch.float64) if up > 1 else None
    fd = (torch.rand(6, 6, dtype=torch.float64) if radial else torch.rand(5, dtype=torch.float64)
          ) if down > 1 else None
    gain = math.sqrt(2) if slope != 1 else 1.0
    out = implementation(x, fu, fd, bias, up=up, down=down, padding=padding, gain=gain,
                         slope=slope, clamp=1.5)
    for n in range(2):
        for c in range(3):
            expected = _filtered_lrelu_naive(x[n, c].numpy(), fu, fd, bias[c].item(), up, down,
                                             padding, gain, slope, 1.5)
            np.testing.assert_allclose(out[n, c].numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv2d_matches_per_sample_convolution(demodulate):
    x = torch.randn(3, 4, 6, 6, dtype=torch.float64)
    weight = torch.randn(5, 4, 3, 3, dtype=torch.float64)
    styles = torch.randn(3, 4, dtype=torch.float64)
    gain = torch.tensor(0.7, dtype=torch.float64)
    out = modulated_conv2d(x, weight, styles, demodulate=demodulate, padding=2, input_gain=gain)
    for i in range(3):
        w = weight * styles[i].reshape(1, 4, 1, 1)
        if demodulate:  # the textbook formula; the pre-normalisation only changes rounding
            w = w / w.square().sum(dim=[1, 2, 3], keepdim=True).sqrt()
        expected = F.conv2d(x[i:i + 1] * gain, w, padding=2)
        np.testing.assert_allclose(out[i:i + 1].numpy(), expected.numpy(), rtol=1e-7, atol=1e-9)


# ---- mapping ------------------------------------------------------------------------------------


def test_mapping_truncation_and_conditioning():
    g = _randomize(StyleGAN3Generator(**dict(TINY, c_dim=3, mapping_kwargs={"num_layers": 3})))
    z, c = torch.randn(2, 7), torch.eye(3)[:2]
    w = g.mapping(z, c)
    assert w.shape == (2, g.num_ws, 6)
    assert torch.equal(w[:, 0], w[:, -1])
    truncated = g.mapping(z, c, truncation_psi=0.7, truncation_cutoff=3)
    expected_head = (g.w_avg + 0.7 * (w[:, :3] - g.w_avg)).detach().numpy()
    np.testing.assert_allclose(truncated[:, :3].detach().numpy(), expected_head, rtol=1e-6, atol=1e-6)
    assert torch.equal(truncated[:, 3:], w[:, 3:])
    assert not torch.allclose(g.mapping(z, torch.eye(3)[1:]), w)  # the label matters
    with pytest.raises(ValueError, match="conditional"):
        g.mapping(z)
    with pytest.raises(ValueError, match="z must have shape"):
        g.mapping(torch.randn(2, 5), c)


# ---- layer API ----------------------------------------------------------------------------------


def test_layers_describe_the_activations(generator):
    names = [layer.name for layer in generator.layers]
    out = generator.synthesize(_ws(generator), taps=names)
    assert names[0] == "input" and generator.layers[-1].kind == "torgb"
    for k, layer in enumerate(generator.layers):
        assert out.taps[layer.name].shape == (2, layer.channels, layer.height, layer.width)
        assert layer.w_indices == (k,)
    assert generator.num_ws == len(generator.layers)
    assert out.image.shape == (2, 3, 32, 32)
    assert torch.equal(out.image, out.taps[names[-1]] * 0.25)


def test_layer_margins_locate_the_image_inside_each_activation():
    g = StyleGAN3Generator(**TINY)
    assert [layer.margin for layer in g.layers] == [10] * 6 + [0, 0]
    # At 48 px the last layers sample at 64 per unit, so the image is 3/4 of a unit wide:
    # 48 of 84 samples at rate 64, 24 of 52 at 32, 12 of 36 at 16.
    g48 = StyleGAN3Generator(**dict(TINY, img_resolution=48, num_layers=14))
    margins = {(layer.height, layer.margin) for layer in g48.layers}
    assert margins == {(36, 12.0), (52, 14.0), (84, 18.0), (48, 0.0)}


def test_each_layer_reads_only_its_own_w(generator):
    ws = _ws(generator, batch=1)
    names = [layer.name for layer in generator.layers]
    base = generator.synthesize(ws, taps=names).taps
    for k in (0, 3, len(names) - 1):
        changed = ws.clone()
        changed[:, k] += 1.0
        taps = generator.synthesize(changed, taps=names).taps
        for j, name in enumerate(names):
            assert torch.equal(taps[name], base[name]) == (j < k), (k, name)


def test_start_from_every_layer_equals_full_forward(generator):
    ws = _ws(generator, batch=1)
    count = len(generator.layers)
    full = generator.synthesize(ws, keep_states=range(count + 1))
    assert set(full.states) == set(range(count + 1))
    for k in range(count + 1):
        resumed = generator.synthesize(ws, start=k, state=full.states[k])
        assert torch.equal(resumed.image, full.image), k


def test_stop_before_the_end_and_resume():
    g = _randomize(StyleGAN3Generator(**TINY))
    ws = _ws(g)
    head = g.synthesize(ws, stop=4, keep_states=[4], taps=["L2_52_16"])
    assert head.image.numel() == 0 and set(head.states) == {4} and "L2_52_16" in head.taps
    tail = g.synthesize(ws, start=4, state=head.states[4])
    assert torch.equal(tail.image, g.synthesize(ws).image)


def test_hooks_change_their_layer_and_everything_after(generator):
    ws = _ws(generator)
    names = [layer.name for layer in generator.layers]
    target = names[3]

    def zero_first_channel(x):
        x = x.clone()
        x[:, 0] = 0
        return x

    plain = generator.synthesize(ws, taps=names)
    hooked = generator.synthesize(ws, taps=names, hooks={target: zero_first_channel})
    assert torch.equal(hooked.taps[target][:, 1:], plain.taps[target][:, 1:])
    assert torch.all(hooked.taps[target][:, 0] == 0)
    assert torch.equal(hooked.taps[names[2]], plain.taps[names[2]])
    assert not torch.allclose(hooked.image, plain.image)


def test_bad_synthesize_arguments_are_refused(generator):
    ws = _ws(generator)
    with pytest.raises(KeyError, match="no layer named"):
        generator.synthesize(ws, taps=["b64.conv0"])
    with pytest.raises(ValueError, match="state"):
        generator.synthesize(ws, start=2)
    with pytest.raises(ValueError, match="ws must have shape"):
        generator.synthesize(ws[:, :3])
    with pytest.raises(ValueError, match="noise_mode"):
        generator.synthesize(ws, noise_mode="loud")
    noise_free = generator.synthesize(ws, noise_mode="random", noise_seed=5).image
    assert torch.equal(noise_free, generator.synthesize(ws, noise_mode="none").image)


# ---- equivariance ------------------------------------------------------------------------------


def _translated(g: StyleGAN3Generator, ws: torch.Tensor, dx_pixels: float) -> torch.Tensor:
    matrix = np.eye(3)
    matrix[0, 2] = dx_pixels / g.img_resolution  # inverse transform: the image moves by -dx
    g.set_input_transform(matrix)
    try:
        return g.synthesize(ws).image
    finally:
        g.set_input_transform(np.eye(3))


def test_translating_the_input_translates_the_image_t_config():
    g = _randomize(StyleGAN3Generator(**TINY))
    with torch.no_grad():  # learned transform = identity, so the user's translation stays along x
        g.synthesis.input.affine.weight.zero_()
    ws = _ws(g, batch=1)
    base = g.synthesize(ws).image
    inner = slice(6, 26)
    # 2 output pixels = one pixel of the coarsest layers: equivariant up to rounding and borders.
    moved = _translated(g, ws, 2)
    scale = base[..., inner, inner].abs().max()
    shifted_error = (moved[..., inner, inner] - base[..., inner, 8:28]).abs().max() / scale
    assert shifted_error < 1e-3
    # 1 output pixel = half a pixel of the coarse layers: only alias suppression makes it work.
    moved = _translated(g, ws, 1)
    shifted_error = (moved[..., inner, inner] - base[..., inner, 7:27]).abs().mean()
    unshifted_error = (moved[..., inner, inner] - base[..., inner, inner]).abs().mean()
    assert shifted_error < 0.01 * unshifted_error


def test_quarter_turn_of_the_input_turns_the_image_for_r_config_only():
    # R uses 1x1 convolutions and radially symmetric filters, so a quarter turn commutes with every
    # layer; T's 3x3 kernels have no such symmetry.
    quarter_turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    errors = {}
    for config in (TINY, TINY_R):
        g = _randomize(StyleGAN3Generator(**config))
        g.synthesis.input.affine.weight.zero_()
        ws = _ws(g, batch=1)
        base = g.synthesize(ws).image
        g.set_input_transform(quarter_turn)
        turned = g.synthesize(ws).image
        errors[g.architecture] = float((turned - torch.rot90(base, 1, dims=(2, 3))).abs().max()
                                       / base.abs().max())
    assert errors["stylegan3-r"] < 1e-4
    assert errors["stylegan3-t"] > 0.05


# ---- construction and config --------------------------------------------------------------------


def test_config_round_trips_through_json(generator):
    config = json.loads(json.dumps(generator.config()))
    again = StyleGAN3Generator(**config)
    assert again.config() == generator.config()
    again.load_state_dict(generator.state_dict(), strict=True)
    ws = _ws(generator)
    assert torch.equal(again.synthesize(ws).image, generator.synthesize(ws).image)
    assert [layer.name for layer in again.layers] == [layer.name for layer in generator.layers]


def test_nvlabs_state_dict_layout():
    g = StyleGAN3Generator(**dict(TINY, c_dim=2))
    keys = list(g.state_dict())
    assert keys[:6] == ["synthesis.input.weight", "synthesis.input.transform", "synthesis.input.freqs",
                        "synthesis.input.phases", "synthesis.input.affine.weight",
                        "synthesis.input.affine.bias"]
    assert keys[-7:] == ["mapping.w_avg", "mapping.embed.weight", "mapping.embed.bias",
                         "mapping.fc0.weight", "mapping.fc0.bias", "mapping.fc1.weight", "mapping.fc1.bias"]
    assert {"synthesis.L0_36_16.magnitude_ema", "synthesis.L0_36_16.affine.weight",
            "synthesis.L0_36_16.up_filter", "synthesis.L0_36_16.down_filter"} <= set(keys)
    assert not g.training


def test_unknown_constructor_arguments_are_refused():
    with pytest.raises(TypeError, match="unknown synthesis argument"):
        StyleGAN3Generator(**TINY, wobble=3)
    with pytest.raises(TypeError, match="unknown mapping argument"):
        StyleGAN3Generator(**TINY, mapping_kwargs={"embed_features": 3})


@pytest.mark.parametrize("bad", [dict(num_layers=2, num_critical=2), dict(channel_max=0),
                                 dict(img_resolution=0), dict(margin_size=-1)])
def test_impossible_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="StyleGAN3Generator"):
        StyleGAN3Generator(**dict(TINY, **bad))


def test_nvlabs_only_arguments_are_accepted():
    g = StyleGAN3Generator(**TINY, num_fp16_res=0, magnitude_ema_beta=0.99,
                           mapping_kwargs={"w_avg_beta": 0.99})
    assert g.config()["num_fp16_res"] == 0
