"""StyleGAN (v1): every op against a naive computation, a whole generator against the reference
forward pass, the layer API, the engine's edits and the native format."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ganinterface.engine.directions import sefa_directions
from ganinterface.engine.kinds import FeatureEdit, StyleMix
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Anchor, Mask, Rect, Scene
from ganinterface.models.native import load_native, save_native
from ganinterface.models.stylegan1 import (
    DenseLayer,
    StyleGAN1Generator,
    SynthesisLayer,
    SynthesisOptions,
    blur2d,
    blur_kernel,
    instance_norm,
    pixel_norm,
    upscale2d_conv2d,
)
from tests.tf_stylegan1_fixtures import (
    TFStyleGAN1Spec,
    conv_same,
    fused_up_conv,
    load_fixture,
    nearest_up,
    reference_mapping,
    reference_synthesis,
)
from tiny_models import tiny_stylegan1


def _randn(*shape, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


# ---- operations against naive computations ----------------------------------------------------------
def test_pixel_norm_scales_each_pixels_feature_vector_to_unit_mean_square():
    x = _randn(2, 5, 3, 4)
    out = pixel_norm(x)
    for n in range(2):
        for i in range(3):
            for j in range(4):
                vector = x[n, :, i, j].double()
                expected = vector / math.sqrt(float((vector**2).mean()) + 1e-8)
                np.testing.assert_allclose(out[n, :, i, j], expected, rtol=1e-5)


def test_instance_norm_per_sample_and_channel():
    x = _randn(2, 3, 4, 5) * 3 + 1
    out = instance_norm(x)
    for n in range(2):
        for c in range(3):
            values = x[n, c].double().numpy()
            centred = values - values.mean()
            expected = centred / math.sqrt((centred**2).mean() + 1e-8)
            np.testing.assert_allclose(out[n, c], expected, rtol=1e-4, atol=1e-5)


def test_blur_is_the_normalised_121_outer_product_with_zero_border():
    x = _randn(1, 2, 5, 6)
    out = blur2d(x, blur_kernel([1, 2, 1]))
    taps = {-1: 1, 0: 2, 1: 1}
    padded = np.pad(x.numpy(), [(0, 0), (0, 0), (1, 1), (1, 1)])
    for c in range(2):
        for i in range(5):
            for j in range(6):
                expected = sum(taps[dy] * taps[dx] * padded[0, c, i + 1 + dy, j + 1 + dx]
                               for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 16
                assert out[0, c, i, j].item() == pytest.approx(expected, abs=1e-5)


def _tf_weight(seed=1, fmaps_in=3, fmaps_out=4):
    """A [kh, kw, in, out] TensorFlow weight and the same as our [out, in, kh, kw]."""
    tf = np.random.default_rng(seed).standard_normal((3, 3, fmaps_in, fmaps_out)).astype(np.float32)
    return tf, torch.from_numpy(tf.transpose(3, 2, 0, 1).copy())


@pytest.mark.parametrize("fused", [False, True])
def test_up_sampling_convolution_matches_tensorflows_definition(fused):
    x = _randn(2, 3, 4, 6)
    tf_weight, weight = _tf_weight()
    out = upscale2d_conv2d(x, weight, fused=fused)
    expected = fused_up_conv(x.double(), tf_weight) if fused else conv_same(nearest_up(x.double()), tf_weight)
    assert out.shape == (2, 4, 8, 12)
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_fused_up_sampling_is_the_separate_one_with_the_kernel_flipped():
    """The original's fused op (transposed conv of the 4-shift kernel sum) equals nearest
    up-sampling + conv + blur with a spatially flipped kernel: the two paths are one operation,
    but a network trained with one needs the other's kernel flipped."""
    x = _randn(1, 3, 5, 4)
    _, weight = _tf_weight()
    blur = blur_kernel([1, 2, 1])
    fused = blur2d(upscale2d_conv2d(x, weight, fused=True), blur)
    separate = blur2d(upscale2d_conv2d(x, weight.flip([2, 3]), fused=False), blur)
    np.testing.assert_allclose(fused, separate, atol=1e-5)
    unflipped = blur2d(upscale2d_conv2d(x, weight, fused=False), blur)
    assert (fused - unflipped).abs().max() > 1e-2


def test_fused_scale_auto_fuses_from_128_pixels_on_the_smaller_side():
    options = SynthesisOptions()
    assert not options.fused_at((64, 64)) and options.fused_at((128, 128))
    assert not options.fused_at((256, 64)) and options.fused_at((256, 128))
    assert SynthesisOptions(fused_scale=True).fused_at((8, 8))
    assert not SynthesisOptions(fused_scale=False).fused_at((1024, 1024))


@pytest.mark.parametrize("use_wscale", [True, False])
def test_dense_layer_equalised_learning_rate(use_wscale):
    layer = DenseLayer(6, 4, gain=math.sqrt(2), use_wscale=use_wscale, lr_multiplier=0.01, activation="lrelu")
    with torch.no_grad():
        layer.bias.normal_()
    layer.requires_grad_(False)
    x = _randn(3, 6)
    scale = math.sqrt(2) / math.sqrt(6) * 0.01 if use_wscale else 0.01
    expected = np.zeros((3, 4))
    for n in range(3):
        for o in range(4):
            value = sum(float(x[n, i]) * float(layer.weight[o, i]) * scale for i in range(6))
            value += float(layer.bias[o]) * 0.01
            expected[n, o] = value if value >= 0 else 0.2 * value
    np.testing.assert_allclose(layer(x), expected, rtol=1e-4, atol=1e-6)


def test_layer_epilogue_is_noise_bias_lrelu_instance_norm_then_adain():
    layer = SynthesisLayer(2, 3, w_dim=4, size=(3, 3), options=SynthesisOptions()).requires_grad_(False)
    for parameter in (layer.noise_strength, layer.bias, layer.affine.bias):
        parameter.normal_()
    x, w, noise = _randn(1, 3, 3, 3, seed=1), _randn(1, 4, seed=2), _randn(1, 1, 3, 3, seed=3)
    out = layer.epilogue(x, w, noise).double()
    style = (w.double() @ layer.affine.weight.double().T / 2 + layer.affine.bias.double())[0]
    for c in range(3):
        y = x[0, c].double() + noise[0, 0].double() * float(layer.noise_strength[c]) + float(layer.bias[c])
        y = torch.where(y >= 0, y, 0.2 * y)
        y = (y - y.mean()) / torch.sqrt(((y - y.mean()) ** 2).mean() + 1e-8)
        np.testing.assert_allclose(out[0, c], y * (style[c] + 1) + style[3 + c], atol=1e-5)


# ---- a whole generator against the reference forward pass -------------------------------------------
SPEC = TFStyleGAN1Spec(resolution=32, dlatent_size=64, latent_size=64, mapping_layers=2, mapping_fmaps=64)


@pytest.fixture(scope="module")
def fixture_generator():
    return load_fixture(SPEC)


def test_whole_generator_equals_the_reference_forward(fixture_generator):
    generator, variables = fixture_generator
    z = np.random.default_rng(5).standard_normal((2, SPEC.latent_size)).astype(np.float32)
    with torch.no_grad():
        ws = generator.mapping(torch.from_numpy(z), truncation_psi=0.6)
        image = generator.synthesize(ws).image
    expected_ws = reference_mapping(variables, SPEC, z, psi=0.6)
    np.testing.assert_allclose(ws, expected_ws, atol=1e-5)
    expected = reference_synthesis(variables, SPEC, expected_ws)
    assert image.shape == (2, 3, 32, 32) and expected.abs().max() > 1
    np.testing.assert_allclose(image, expected, atol=1e-4)


def test_truncation_defaults_to_the_first_eight_rows():
    generator = StyleGAN1Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=64, img_channels=3,
                                   fmap_base=256, fmap_max=4, mapping_kwargs={"num_layers": 1})
    generator.requires_grad_(False).mapping_network.w_avg.normal_()
    z = _randn(1, 8)
    plain = generator.mapping(z)
    truncated = generator.mapping(z, truncation_psi=0.5)
    avg = generator.w_avg
    assert generator.num_ws == 10
    np.testing.assert_allclose(truncated[:, :8], avg + (plain[:, :8] - avg) * 0.5, atol=1e-6)
    np.testing.assert_array_equal(truncated[:, 8:], plain[:, 8:])
    everything = generator.mapping(z, truncation_psi=0.5, truncation_cutoff=10)
    np.testing.assert_allclose(everything, avg + (plain - avg) * 0.5, atol=1e-6)


# ---- the layer API ---------------------------------------------------------------------------------
def test_layers_of_a_non_square_generator():
    generator = tiny_stylegan1(width=8)
    assert [(info.name, info.channels, info.height, info.width, info.w_indices) for info in generator.layers] == [
        ("b4.const", 8, 4, 2, (0,)), ("b4.conv", 8, 4, 2, (1,)),
        ("b8.conv0", 6, 8, 4, (2,)), ("b8.conv1", 6, 8, 4, (3,)),
        ("b16.conv0", 4, 16, 8, (4,)), ("b16.conv1", 4, 16, 8, (5,)),
        ("b16.torgb", 3, 16, 8, ())]
    assert generator.num_ws == 6
    ws = generator.mapping(_randn(2, 8))
    out = generator.synthesize(ws, taps=[info.name for info in generator.layers])
    assert out.image.shape == (2, 3, 16, 8)
    for info in generator.layers:
        assert out.taps[info.name].shape == (2, info.channels, info.height, info.width)


@pytest.mark.parametrize("noise_mode", ["const", "random", "none"])
def test_resuming_at_every_layer_equals_a_full_forward(noise_mode):
    generator = tiny_stylegan1()
    ws = generator.mapping(_randn(2, 8), truncation_psi=0.7)
    n = len(generator.layers)
    with torch.no_grad():
        full = generator.synthesize(ws, keep_states=range(n + 1), noise_mode=noise_mode, noise_seed=3)
        for k in range(1, n):
            resumed = generator.synthesize(ws, start=k, state=full.states[k], noise_mode=noise_mode, noise_seed=3)
            torch.testing.assert_close(resumed.image, full.image, rtol=0, atol=0)
    first, second = (generator.synthesize(ws, noise_mode=noise_mode, noise_seed=s).image for s in (3, 4))
    assert (noise_mode == "random") == (not torch.equal(first, second))


def test_a_hook_changes_only_what_follows_its_layer():
    generator = tiny_stylegan1()
    ws = generator.mapping(_randn(1, 8))
    names = [info.name for info in generator.layers]
    plain = generator.synthesize(ws, taps=names)
    hooked = generator.synthesize(ws, taps=names, hooks={"b8.conv0": lambda x: x * 2})
    for name in names[:2]:
        torch.testing.assert_close(hooked.taps[name], plain.taps[name])
    torch.testing.assert_close(hooked.taps["b8.conv0"], plain.taps["b8.conv0"] * 2)
    assert not torch.allclose(hooked.image, plain.image)


def test_a_w_row_matters_from_its_layer_on_only():
    generator = tiny_stylegan1()
    ws = generator.mapping(_randn(1, 8))
    names = [info.name for info in generator.layers]
    plain = generator.synthesize(ws, taps=names)
    for row in range(generator.num_ws):
        changed_ws = ws.clone()
        changed_ws[:, row] += 1
        changed = generator.synthesize(changed_ws, taps=names)
        first = generator.first_layer_reading(row)
        assert first == row
        for k, name in enumerate(names):
            assert torch.equal(changed.taps[name], plain.taps[name]) == (k < first), (row, name)


def test_conditional_mapping_concatenates_the_label_before_pixel_norm():
    generator = tiny_stylegan1(c_dim=3)
    z = _randn(1, 8)
    with pytest.raises(ValueError, match="conditional"):
        generator.mapping(z)
    labels = torch.eye(3)[:2]
    ws = generator.mapping(z.repeat(2, 1), labels)
    assert not torch.allclose(ws[0], ws[1])
    x = torch.cat([z, labels[:1] @ generator.mapping_network.embed.T], dim=1)
    x = x / torch.sqrt(x.square().mean() + 1e-8)
    for i in range(2):
        fc = getattr(generator.mapping_network, f"fc{i}")
        x = torch.nn.functional.leaky_relu(x @ (fc.weight * fc.weight_gain).T + fc.bias * 0.01, 0.2)
    torch.testing.assert_close(ws[0, 0], x[0])


def test_constructor_refuses_bad_configurations():
    base = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3)
    with pytest.raises(ValueError, match="power of two"):
        StyleGAN1Generator(**{**base, "img_resolution": 24})
    with pytest.raises(ValueError, match="img_width 5"):
        StyleGAN1Generator(**base, img_width=5)
    with pytest.raises(TypeError, match="unsupported synthesis argument.*resize"):
        StyleGAN1Generator(**base, resize=2)
    with pytest.raises(ValueError, match="fused_scale"):
        StyleGAN1Generator(**base, fused_scale="sometimes")
    with pytest.raises(ValueError, match="img_resolution must be between"):
        StyleGAN1Generator(**{**base, "img_resolution": 2**20})


# ---- the engine: edits and directions ---------------------------------------------------------------
def test_feature_edit_with_an_anchor_and_a_style_mix_render():
    generator = tiny_stylegan1()
    renderer = Renderer(generator, "cpu")
    mask = Mask((Rect(0.2, 0.2, 0.6, 0.6),))
    base = renderer.render(Scene(seed=1))
    edited = renderer.render(Scene(seed=1, edits=(
        FeatureEdit("b8.conv1", (0, 1), mask, amount=2.0, anchor=Anchor("b8.conv1", (0,), 0.5, 0.5, 0.2)),)))
    mixed = renderer.render(Scene(seed=1, edits=(StyleMix(seed=7, first=3),)))
    for result in (base, edited, mixed):
        assert result.error is None and result.image.shape == (16, 8, 3)
    assert not np.array_equal(edited.raw, base.raw) and not np.array_equal(mixed.raw, base.raw)
    np.testing.assert_array_equal(mixed.ws[:3], base.ws[:3])
    assert mixed.first_layer == 3  # the cache serves the layers before the first mixed row


@pytest.mark.slow
def test_cached_renders_equal_fresh_ones_for_changes_at_every_layer():
    from test_renderer import _scenes_changing_at_each_layer

    generator = tiny_stylegan1()
    base, cases = _scenes_changing_at_each_layer(generator)
    taps = [info.name for info in generator.layers]
    for scene, expected_first in cases:
        renderer = Renderer(generator, "cpu")
        renderer.render(base, taps)
        incremental = renderer.render(scene, taps)
        fresh = Renderer(generator, "cpu").render(scene, taps)
        assert incremental.error is None and incremental.first_layer == expected_first
        np.testing.assert_allclose(incremental.raw, fresh.raw, atol=1e-6)


def test_sefa_factorises_every_layers_style_weights():
    generator = tiny_stylegan1()
    directions, values = sefa_directions(generator, count=3)
    weights = np.concatenate([generator.state_dict()[f"synthesis.{info.name}.affine.weight"].numpy()
                              for info in generator.layers[:-1]]).astype(np.float64)
    weights /= np.linalg.norm(weights, axis=1, keepdims=True)
    eigenvalues = np.linalg.eigvalsh(weights.T @ weights)[::-1][:3]
    np.testing.assert_allclose(values, eigenvalues, rtol=1e-4)
    assert directions.shape == (3, 8)


# ---- native format ------------------------------------------------------------------------------------
@pytest.mark.parametrize("width", [8, 16, 32], ids=["16x8", "16x16", "16x32"])
def test_native_round_trip_is_exact(tmp_path, width):
    generator = tiny_stylegan1(c_dim=2, width=width)
    save_native(generator, tmp_path / "v1.safetensors")
    loaded = load_native(tmp_path / "v1.safetensors")
    assert loaded.architecture == "stylegan1" and (loaded.img_height, loaded.img_width) == (16, width)
    assert json.loads((tmp_path / "v1.json").read_text())["architecture"] == "stylegan1"
    z, c = _randn(2, 8), torch.eye(2)
    with torch.no_grad():
        torch.testing.assert_close(loaded(z, c, truncation_psi=0.7), generator(z, c, truncation_psi=0.7),
                                   rtol=0, atol=0)


@pytest.mark.slow
def test_native_round_trip_of_a_64_by_32_generator_with_fused_up_sampling(tmp_path):
    generator = StyleGAN1Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=64, img_width=32,
                                   img_channels=3, fmap_base=64, fmap_max=8, fused_scale=True,
                                   mapping_kwargs={"num_layers": 3, "layer_features": 16})
    save_native(generator, tmp_path / "wide.safetensors")
    loaded = load_native(tmp_path / "wide.safetensors")
    assert loaded.layers == generator.layers and loaded.config() == generator.config()
    z = _randn(1, 16)
    with torch.no_grad():
        image = loaded(z, truncation_psi=0.5)
        torch.testing.assert_close(image, generator(z, truncation_psi=0.5), rtol=0, atol=0)
    assert image.shape == (1, 3, 64, 32)
