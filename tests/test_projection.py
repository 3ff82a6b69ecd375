"""Projection: crops, the search, its distance, noise maps, and the discriminator and VGG files."""

from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from ganinterface.engine.projection import (FEATURE_LEVEL_SAMPLES, FeatureLevels, feature_levels,
                                            ProjectionError, ProjectionSettings, WPrior, crop_box,
                                            crop_to_aspect, learning_rate_ramp,
                                            noise_regularisation, project, psnr, search_dtype)
from ganinterface.engine.picture_distance import PerceptualDistance
from ganinterface.models.base import CheckpointError
from ganinterface.models.discriminator import ResidualDiscriminator, load_discriminator
from ganinterface.models.perceptual import STAGES, load_perceptual_network
from tiny_models import tiny_stylegan2, tiny_stylegan3

PORTRAIT = types.SimpleNamespace(img_width=64, img_height=128)  # 1:2, as the built-in model
LANDSCAPE = types.SimpleNamespace(img_width=256, img_height=128)  # 2:1


# ---- crops -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("model, size, box", [
    (PORTRAIT, (300, 500), (25, 0, 275, 500)),  # too wide for 1:2: 250 px wide, centred
    (PORTRAIT, (100, 400), (0, 100, 100, 300)),  # too tall: 200 px high, centred
    (PORTRAIT, (64, 128), (0, 0, 64, 128)),  # already the aspect
    (LANDSCAPE, (300, 300), (0, 75, 300, 225)),  # 150 px high for 2:1
    (LANDSCAPE, (1000, 100), (400, 0, 600, 100)),
])
def test_the_crop_is_the_largest_centred_box_with_the_models_aspect(model, size, box):
    assert crop_box(*size, model) == box


def test_crop_to_aspect_keeps_the_box_and_scales_it_to_the_model():
    picture = np.zeros((40, 30, 3), np.uint8)  # 30 wide, 40 high; the 1:2 box is x 5..25
    picture[:, 5:25] = (200, 100, 50)
    target = crop_to_aspect(picture, PORTRAIT)
    assert target.shape == (1, 3, 128, 64)
    expected = torch.tensor([200, 100, 50]) / 127.5 - 1
    assert torch.allclose(target[0].mean(dim=(1, 2)), expected, atol=1e-3)


def test_a_chosen_crop_of_the_models_size_is_those_pixels():
    picture = np.random.default_rng(1).integers(0, 256, (200, 150, 3), np.uint8)
    target = crop_to_aspect(picture, PORTRAIT, (30, 50, 94, 178))  # 64 x 128: no resampling
    expected = picture[50:178, 30:94].astype(np.float32) / 127.5 - 1
    assert torch.allclose(target[0].permute(1, 2, 0), torch.from_numpy(expected), atol=1e-6)


@pytest.mark.parametrize("box, problem", [
    ((-1, 0, 63, 128), "the crop -1,0,64,128 is not inside the picture (150 × 200 px)"),
    ((100, 0, 164, 128), "the crop 100,0,64,128 is not inside the picture (150 × 200 px)"),
    ((0, 0, 100, 100), "the crop 0,0,100,100 is 100 × 100 px, not the model's aspect (64 × 128 px): "
                       "e.g. 100 × 200 px"),
])
def test_a_chosen_crop_outside_the_picture_or_off_the_aspect_is_refused(box, problem):
    picture = np.zeros((200, 150, 3), np.uint8)
    with pytest.raises(ProjectionError) as error:
        crop_to_aspect(picture, PORTRAIT, box)
    assert str(error.value) == problem


def test_a_crop_a_pixel_off_the_aspect_is_accepted():
    picture = np.zeros((200, 150, 3), np.uint8)
    for box in ((0, 0, 50, 101), (0, 0, 51, 100), (0, 0, 50, 99)):
        assert crop_to_aspect(picture, PORTRAIT, box).shape == (1, 3, 128, 64)
    with pytest.raises(ProjectionError):
        crop_to_aspect(picture, PORTRAIT, (0, 0, 52, 100))


def test_a_picture_of_another_kind_is_refused():
    with pytest.raises(ProjectionError, match="RGB uint8"):
        crop_to_aspect(np.zeros((4, 4), np.uint8), PORTRAIT)


# ---- schedule and regularisation ---------------------------------------------------------------

def test_the_learning_rate_ramps_up_then_down_as_nvlabs_does():
    assert learning_rate_ramp(0.0) == 0.0
    assert learning_rate_ramp(0.025) == pytest.approx(0.5)  # half-way up the 5% warm-up
    assert learning_rate_ramp(0.5) == 1.0
    assert learning_rate_ramp(0.875) == pytest.approx(0.5)  # half-way down the last 25%
    assert learning_rate_ramp(1.0) == 0.0


def test_noise_regularisation_counts_each_shift_at_each_scale():
    # A constant map correlates fully with its shifts: 1 per shift direction, 2 directions, at
    # 16x16 and at the 8x8 level after one pooling.
    assert noise_regularisation({"a": torch.ones(16, 16)}).item() == pytest.approx(4.0)
    # A checkerboard anti-correlates: (-1)^2 per shift, but pools to 0 at 8x8.
    checker = torch.tensor([[(-1.0) ** (i + j) for j in range(16)] for i in range(16)])
    assert noise_regularisation({"a": checker}).item() == pytest.approx(2.0)


def test_the_w_prior_reads_a_gaussians_samples_at_one_per_dimension_and_its_mean_at_zero():
    rng = torch.Generator().manual_seed(0)
    mixing = torch.randn(8, 8, generator=rng)  # samples u @ mixing + 3, u standard normal: skewed
    prior = WPrior(torch.randn(50_000, 8, generator=rng) @ mixing + 3.0)
    fresh = torch.randn(5000, 8, generator=rng) @ mixing + 3.0
    assert prior.distance(fresh).item() == pytest.approx(1.0, abs=0.05)
    assert prior.distance(torch.full((8,), 3.0)).item() == pytest.approx(0.0, abs=0.01)
    three_deviations_out = 3.0 * torch.eye(8)[0] @ mixing + 3.0  # squared distance 9, over 8 dimensions
    assert prior.distance(three_deviations_out).item() == pytest.approx(9 / 8, rel=0.03)


# ---- the search -------------------------------------------------------------------------------------

def _render(generator, ws, noise=None, detail=None):
    """The render of ``ws`` (with noise maps and a projection's detail maps, added by the test)."""
    hooks = {name: (lambda x, d=value: x + d) for name, value in (detail or {}).items()}
    with torch.no_grad():
        return generator.synthesize(ws, noise_mode="const", noise_maps=noise, hooks=hooks).image


def _target(generator, seed=3):
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, generator.z_dim).astype(np.float32))
    with torch.no_grad():
        return generator.mapping(z), _render(generator, generator.mapping(z))


def test_projecting_a_generators_own_render_in_w_finds_a_latent_that_renders_it():
    generator = tiny_stylegan2()
    _, target = _target(generator)
    start = psnr(_render(generator, generator.w_avg[None, None].repeat(1, generator.num_ws, 1)), target)
    # 300 steps at 0.1: on this 16 x 8 px model 150 steps at 0.2 end anywhere from 25 to 80 dB by
    # seed, with or without the edge term (a peak rate that overshoots, then a cool-down too short)
    found = project(generator, target, ProjectionSettings(space="w", steps=300, learning_rate=0.1,
                                                          detail=False))
    assert found.w.shape == (1, generator.w_dim)
    rendered = _render(generator, found.ws(generator.num_ws), detail=found.detail)
    assert found.psnr == pytest.approx(psnr(rendered, target))  # what is reported is what renders
    assert found.psnr > 40 > start + 20


@pytest.mark.slow
def test_projecting_in_w_plus_refines_rows_after_w():
    generator = tiny_stylegan2()
    _, target = _target(generator)
    found = project(generator, target, ProjectionSettings(space="w+", steps=300, w_plus_learning_rate=0.05))
    assert found.w.shape == (1, generator.num_ws, generator.w_dim)
    assert not torch.equal(found.w[0, 0], found.w[0, -1])  # the rows went their own ways
    assert found.psnr == pytest.approx(psnr(_render(generator, found.w, detail=found.detail), target))
    assert found.psnr > 40


def _mahalanobis_from_w(generator, rows):
    """Mean squared Mahalanobis distance per dimension of ``rows`` from mapped samples (numpy)."""
    z = torch.from_numpy(np.random.RandomState(99).randn(5000, generator.z_dim).astype(np.float32))
    with torch.no_grad():
        samples = generator.mapping(z)[:, 0].double().numpy()
    inverse = np.linalg.inv(np.cov(samples, rowvar=False))
    offsets = rows.reshape(-1, samples.shape[1]).double().numpy() - samples.mean(axis=0)
    return float(np.einsum("ij,jk,ik->i", offsets, inverse, offsets).mean() / samples.shape[1])


def test_the_w_prior_holds_w_plus_rows_where_w_lies():
    generator = tiny_stylegan2()
    far = generator.w_avg + 4 * torch.randn(1, generator.num_ws, generator.w_dim,
                                             generator=torch.Generator().manual_seed(5))
    target = _render(generator, far)  # made from rows far outside W: the free search follows them
    settings = ProjectionSettings(space="w+", steps=30, candidates=0, w_plus_learning_rate=0.1)
    free = project(generator, target, settings)
    held = project(generator, target, dataclasses.replace(settings, w_plus_prior=1.0))
    assert _mahalanobis_from_w(generator, held.w) < 0.5 * _mahalanobis_from_w(generator, free.w)


def test_feature_levels_are_the_mean_loudness_of_the_layers_edits_paint_into():
    generator = tiny_stylegan2()  # 16 px high: its layers at 4 and 8 px
    levels = FeatureLevels(generator)
    assert levels.layers == ["b4.conv1", "b8.conv0", "b8.conv1"]
    seen = {}

    def keep(name):
        def hook(module, args, out):
            seen[name] = out.abs().mean().item()
        return hook

    hooks = [generator.get_submodule(f"synthesis.{name}").register_forward_hook(keep(name))
             for name in levels.layers]
    z = torch.randn([2000, generator.z_dim], generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        w = generator.mapping(z)[:FEATURE_LEVEL_SAMPLES]
        generator.synthesize(w, noise_mode="const")
    for hook in hooks:
        hook.remove()
    assert levels.levels == pytest.approx(seen, rel=1e-5)


def test_feature_levels_are_measured_once_per_state_of_the_weights():
    generator = tiny_stylegan2()
    first = feature_levels(generator)
    assert feature_levels(generator) is first  # a second projection renders no samples again
    with torch.no_grad():
        generator.synthesis.b8.conv0.bias.add_(2.0)  # louder there from now on (its weight is demodulated)
    again = feature_levels(generator)
    assert again is not first
    assert again.levels == pytest.approx(FeatureLevels(generator).levels)
    assert again.levels["b8.conv0"] > 2 * first.levels["b8.conv0"]


def test_the_feature_level_term_holds_a_projections_features_as_loud_as_the_samples():
    generator = tiny_stylegan2()
    loud = generator.w_avg + 4 * torch.randn(1, generator.num_ws, generator.w_dim,
                                              generator=torch.Generator().manual_seed(5))
    target = _render(generator, loud)
    levels = FeatureLevels(generator)

    def penalty(found):
        with torch.no_grad():
            taps = generator.synthesize(found.w, noise_mode="const", taps=levels.layers).taps
        return float(levels.penalty(taps))

    settings = ProjectionSettings(space="w+", steps=30, candidates=0, feature_level=0.0, detail=False)
    free = project(generator, target, settings)
    held = project(generator, target, dataclasses.replace(settings, feature_level=100.0))
    assert penalty(held) < 0.5 * penalty(free)


@pytest.mark.parametrize("fast", [True, False])
def test_the_search_runs_in_bfloat16_where_the_processor_runs_it_fast_and_reports_in_float32(monkeypatch, fast):
    generator = tiny_stylegan2()
    _, target = _target(generator)
    dtypes = []
    synthesize = generator.synthesize
    monkeypatch.setattr(generator, "synthesize",
                        lambda *a, **k: dtypes.append(k.get("compute_dtype", torch.float32)) or synthesize(*a, **k))
    bf16_fast = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    found = project(generator, target, ProjectionSettings(space="w", steps=4, fast=fast, candidates=0))
    search = torch.bfloat16 if fast and bf16_fast else torch.float32
    assert dtypes[-5:] == [search] * 4 + [torch.float32]  # four steps, then the render measured
    assert found.psnr == pytest.approx(psnr(_render(generator, found.ws(generator.num_ws), detail=found.detail), target))


def test_without_fast_bfloat16_the_search_stays_in_float32(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert search_dtype(tiny_stylegan2(), torch.device("cpu")) == torch.float32


def test_the_same_seed_gives_the_same_latent_and_another_seed_another():
    generator = tiny_stylegan2()
    _, target = _target(generator)
    settings = ProjectionSettings(space="w", steps=12, jitter=0.05, seed=1)
    first = project(generator, target, settings)
    assert torch.equal(first.w, project(generator, target, settings).w)
    assert first.w.shape == (1, generator.w_dim)
    assert not torch.equal(first.w, project(generator, target, ProjectionSettings(space="w", steps=12, jitter=0.05, seed=2)).w)


def test_an_encoders_start_replaces_the_search_for_a_start():
    generator = tiny_stylegan2()
    ws, target = _target(generator)
    found = project(generator, target, ProjectionSettings(steps=1, learning_rate=1e-9),
                    start_w=ws[0, 0])
    assert torch.allclose(found.w, ws[:, 0], atol=1e-5)
    assert found.psnr > 60  # the answer itself: nothing left to find


@pytest.mark.slow
def test_from_a_w_plus_guess_near_a_known_latent_the_default_search_recovers_its_render():
    # An encoder's guess: the answer's rows, each moved by 0.1 (the guess renders at 25 dB).  The
    # default settings refine the rows only (no W phase); 60 steps measured 46 dB.
    generator = tiny_stylegan2()
    z = torch.from_numpy(np.random.RandomState(5).randn(2, generator.z_dim).astype(np.float32))
    with torch.no_grad():
        answer = generator.mapping(z)
        answer[:, generator.num_ws // 2:] = answer[1:, generator.num_ws // 2:]  # style-mixed rows
        answer = answer[:1]
    target = _render(generator, answer)
    guess = answer + 0.1 * torch.randn(answer.shape, generator=torch.Generator().manual_seed(0))
    start = psnr(_render(generator, guess), target)
    found = project(generator, target, ProjectionSettings(steps=60), start_w=guess)
    assert found.w.shape == answer.shape
    assert found.psnr > 40 > start + 10


def test_cancel_stops_after_the_current_step_and_returns_what_was_found():
    generator = tiny_stylegan2()
    _, target = _target(generator)
    flag = types.SimpleNamespace(cancelled=False)
    seen = []

    def progress(step, steps, image):
        seen.append((step, steps, tuple(image.shape)))
        flag.cancelled = step == 3

    found = project(generator, target, ProjectionSettings(steps=50), progress=progress, cancel=flag)
    assert found.cancelled and found.steps == 3
    assert seen == [(1, 50, (1, 3, 16, 8)), (2, 50, (1, 3, 16, 8)), (3, 50, (1, 3, 16, 8))]


def test_optimised_noise_stays_normalised_and_renders_what_was_reported():
    generator = tiny_stylegan2()
    _, target = _target(generator)
    found = project(generator, target, ProjectionSettings(steps=20, optimise_noise=True))
    assert set(found.noise) == set(generator.stored_noise())
    for value in found.noise.values():
        assert abs(value.mean().item()) < 1e-5
        assert value.square().mean().item() == pytest.approx(1.0, abs=1e-4)
    assert found.psnr == pytest.approx(psnr(_render(generator, found.ws(generator.num_ws), found.noise, found.detail), target))


def test_noise_of_a_model_without_noise_inputs_is_refused():
    generator = tiny_stylegan3()
    with pytest.raises(ProjectionError, match="no noise inputs"):
        project(generator, torch.zeros(1, 3, 16, 16), ProjectionSettings(steps=1, optimise_noise=True))


def test_a_target_of_the_wrong_size_is_refused_pointing_at_the_crop():
    with pytest.raises(ProjectionError, match="crop_to_aspect"):
        project(tiny_stylegan2(), torch.zeros(1, 3, 16, 16), ProjectionSettings(steps=1))


@pytest.mark.parametrize("bad", [dict(space="z"), dict(steps=0), dict(w_plus_share=1.5),
                                 dict(w_plus_prior=-1.0), dict(feature_level=-0.1)])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ProjectionError):
        ProjectionSettings(**bad)


# ---- noise maps in synthesis ------------------------------------------------------------------------

def test_noise_maps_replace_the_stored_noise():
    generator = tiny_stylegan2()
    ws = generator.mapping(torch.randn(1, generator.z_dim)).detach()
    stored = {name: value.clone() for name, value in generator.stored_noise().items()}
    assert torch.equal(_render(generator, ws, stored), _render(generator, ws))
    zeros = {name: torch.zeros_like(value) for name, value in stored.items()}
    with torch.no_grad():
        no_noise = generator.synthesize(ws, noise_mode="none").image
    assert torch.allclose(_render(generator, ws, zeros), no_noise, atol=1e-6)


def test_a_noise_map_for_no_such_layer_or_of_the_wrong_size_is_refused():
    generator = tiny_stylegan2()
    ws = generator.mapping(torch.randn(1, generator.z_dim)).detach()
    with pytest.raises(ValueError, match="has no noise input"):
        _render(generator, ws, {"b4.torgb": torch.zeros(4, 4)})
    with pytest.raises(ValueError, match="needs"):
        _render(generator, ws, {"b4.conv1": torch.zeros(3, 3)})


# ---- the distance and its networks ------------------------------------------------------------------

def test_the_distance_is_zero_at_the_target_and_grows_with_the_difference():
    target = torch.rand(1, 3, 32, 16) * 2 - 1
    discriminator = ResidualDiscriminator(32, 16, channel_base=128, channel_max=16)
    distance = PerceptualDistance([discriminator]).against(target)
    near, far = target + 0.01, target.flip(2)
    assert distance(target).item() == pytest.approx(0.0, abs=1e-6)
    assert 0 < distance(near) < distance(far)
    assert distance(torch.cat([near, far])).item() == pytest.approx((distance(near) + distance(far)).item())
    # pixel term by hand at one scale: mean squared difference
    assert PerceptualDistance(pixel_scales=1, edge_weight=0).against(target)(near).item() == pytest.approx(1e-4, rel=1e-3)
    # the same error everywhere: the edge term adds it once more (its weights average 1)
    assert PerceptualDistance(pixel_scales=1).against(target)(near).item() == pytest.approx(2e-4, rel=1e-3)


def test_edge_weights_are_the_pictures_local_contrast_over_its_mean():
    from ganinterface.engine.picture_distance import edge_weights

    picture = np.random.default_rng(3).uniform(-1, 1, (2, 3, 7, 5))
    weights = edge_weights(torch.from_numpy(picture).float()).numpy()
    for n in range(2):
        luminance = picture[n].mean(axis=0)
        contrast = np.zeros_like(luminance)
        contrast[:, :-1] += np.abs(np.diff(luminance, axis=1))
        contrast[:-1, :] += np.abs(np.diff(luminance, axis=0))
        padded = np.pad(contrast, 1)
        smoothed = np.array([[padded[i:i + 3, j:j + 3].sum() / 9 for j in range(5)] for i in range(7)])
        np.testing.assert_allclose(weights[n, 0], smoothed / smoothed.mean(), rtol=1e-5)
    assert edge_weights(torch.zeros(1, 3, 4, 4)).abs().max() == 0  # a flat picture: no edge term


def test_an_error_on_a_sharp_detail_costs_more_than_the_same_error_on_a_flat_area():
    target = -torch.ones(1, 3, 32, 16)
    target[..., 8:10, 4:6] = 1.0  # a small bright detail, an eye's size
    on_detail, on_flat = target.clone(), target.clone()
    on_detail[..., 8:10, 4:6] -= 0.5
    on_flat[..., 24:26, 10:12] += 0.5
    plain = PerceptualDistance(edge_weight=0).against(target)
    assert plain(on_detail).item() == pytest.approx(plain(on_flat).item(), rel=1e-6)
    weighted = PerceptualDistance().against(target)
    assert weighted(on_detail).item() > 2 * weighted(on_flat).item()


def test_the_discriminator_joins_the_distance_only_when_asked():
    from ganinterface.engine.picture_distance import distance_for
    from ganinterface.models.loading import load_generator

    generator = load_generator(None)  # the built-in model ships its D beside it
    assert distance_for(None, generator).networks == []
    [network] = distance_for(None, generator, discriminator=True).networks
    assert isinstance(network, ResidualDiscriminator)


def test_a_discriminator_file_loads_with_its_widths_read_from_the_shapes(tmp_path):
    torch.manual_seed(0)
    saved = ResidualDiscriminator(32, 16, channel_base=256, channel_max=32, aux_outputs=2).eval()
    path = tmp_path / "d.safetensors"
    save_file({k: v.contiguous() for k, v in saved.state_dict().items()}, str(path))
    loaded = load_discriminator(path, 32, 16)
    images = torch.rand(2, 3, 32, 16)
    for a, b in zip(saved.features(images), loaded.features(images)):
        assert torch.equal(a, b)
    with pytest.raises(CheckpointError, match="a discriminator for 16 × 32 px images, not 8 × 32 px"):
        load_discriminator(path, 32, 8)
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="^[^\n]*junk.safetensors: not a readable safetensors file"):
        load_discriminator(tmp_path / "junk.safetensors", 32, 16)


def _vgg_state(lin: bool) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    state, in_channels = {}, 3
    for number, stage in enumerate(STAGES):
        for index, channels in stage:
            state[f"features.{index}.weight"] = torch.randn(channels, in_channels, 3, 3) * 0.1
            state[f"features.{index}.bias"] = torch.zeros(channels)
            in_channels = channels
        if lin:
            state[f"lin{number}.model.1.weight"] = torch.rand(1, stage[-1][1], 1, 1)
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a whole torchvision state dict is fine
    return state


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_a_vgg16_file_with_lpips_weights_loads_and_measures(tmp_path, suffix):
    state = _vgg_state(lin=True)
    path = tmp_path / f"vgg{suffix}"
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    network = load_perceptual_network(path)
    assert torch.equal(network.channel_weights[2], state["lin2.model.1.weight"].reshape(-1))
    features = network.features(torch.zeros(1, 3, 32, 32))
    assert [f.shape[1] for f in features] == [64, 128, 256, 512, 512]
    assert [f.shape[2] for f in features] == [32, 16, 8, 4, 2]
    # conv0 by hand at one pixel: relu(sum over the 3x3 window of weight * scaled input + bias)
    x = (torch.zeros(1, 3, 32, 32) - network.shift) / network.scale
    by_hand = torch.relu(torch.nn.functional.conv2d(x, state["features.0.weight"], padding=1))
    assert torch.allclose(network.convs["0"](x).relu(), by_hand, atol=1e-6)


def test_a_file_that_is_not_vgg16_is_refused_in_one_line(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"conv.weight": torch.zeros(1)}, str(path))
    with pytest.raises(CheckpointError) as error:
        load_perceptual_network(path)
    assert str(error.value) == (f"{path}: not a VGG16 state dict (no features.0.weight); expected "
                                "torchvision vgg16 weights, optionally with LPIPS lin layers")
    state = _vgg_state(lin=False)
    state["features.28.weight"] = torch.zeros(512, 512, 1, 1)
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_perceptual_network(path)
