import dataclasses

import numpy as np
import pytest
import torch

from ganinterface.engine.kinds import (DirectionEdit, FeatureCopy, FeatureEdit, RegionResample,
                                       StyleMix)
from ganinterface.engine.latents import z_from_seed
from ganinterface.engine.masks import rasterize
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Anchor, Mask, Rect, Scene, Stroke
from tiny_models import tiny_stylegan1, tiny_stylegan2, tiny_stylegan3


@pytest.fixture(scope="module")
def generator():
    return tiny_stylegan2()


def _fresh(generator, scene, taps=()):
    """A renderer with an empty cache: a full forward pass."""
    return Renderer(generator, "cpu").render(scene, taps)


def _full_forward(generator, seed, psi=1.0, noise_mode="const"):
    """Independent of the renderer: mapping + synthesis straight from the generator."""
    with torch.no_grad():
        z = torch.from_numpy(z_from_seed(seed, generator.z_dim))
        ws = generator.mapping(z, None, truncation_psi=psi)
        return generator.synthesize(ws, noise_mode=noise_mode).image[0].numpy()


def test_render_matches_the_generator_and_nvlabs_uint8_conversion(generator):
    result = _fresh(generator, Scene(seed=3, truncation_psi=0.7))
    assert result.error is None
    expected = _full_forward(generator, 3, psi=0.7)
    np.testing.assert_array_equal(result.raw, expected)
    manual = np.clip(np.floor(expected.transpose(1, 2, 0) * 127.5 + 128), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(result.image, manual)
    assert result.image.shape == (16, 8, 3) and result.first_layer == 0
    assert result.ws.shape == (generator.num_ws, generator.w_dim)


def test_w_and_w_plus_scenes(generator):
    ws = Renderer(generator).base_ws(Scene(seed=5))
    w_plus = Renderer(generator).render(Scene(seed=99, w=ws))
    np.testing.assert_array_equal(w_plus.raw, _fresh(generator, Scene(seed=5)).raw)
    single = Renderer(generator).render(Scene(w=ws[0]))  # (w_dim,) broadcast to every row
    np.testing.assert_array_equal(single.raw, w_plus.raw)
    bad = Renderer(generator).render(Scene(w=np.zeros((3, 8))))
    assert bad.image is None and "scene.w has shape (3, 8)" in bad.error


def _direction(generator, first):
    vector = np.random.default_rng(first).normal(size=generator.w_dim).astype(np.float32)
    return DirectionEdit(vector, amount=1.5, first=first)


def _scenes_changing_at_each_layer(generator):
    """(scene, first layer it must restart at) for a change that first matters at every layer."""
    base = Scene(seed=1, noise_mode="random", noise_seed=2)
    out = []
    for row in range(generator.num_ws):
        out.append((base.replace(edits=(_direction(generator, row),)),
                    generator.first_layer_reading(row)))
    mask = Mask((Stroke(((0.3, 0.4), (0.7, 0.6)), radius=0.2, softness=0.5),))
    for k, layer in enumerate(generator.layers):
        edit = FeatureEdit(layer.name, (0, layer.channels - 1), mask, amount=0.8)
        # a hook on layer k changes its output: the output cached without it (kept as the next
        # state's "x" by every layer but a ToRGB and the last) gets the hook, else layer k re-runs
        reuses_output = layer.kind != "torgb" and k + 1 < len(generator.layers)
        out.append((base.replace(edits=(edit,)), k + 1 if reuses_output else k))
    return base, out


@pytest.mark.parametrize("architecture", ["skip", "resnet", "orig"])
def test_cached_render_equals_fresh_render_for_changes_at_every_layer(architecture):
    generator = tiny_stylegan2(architecture=architecture)
    base, cases = _scenes_changing_at_each_layer(generator)
    taps = [layer.name for layer in generator.layers]
    for scene, expected_first in cases:
        renderer = Renderer(generator, "cpu")
        warm = renderer.render(base, taps)
        assert warm.first_layer == 0
        incremental = renderer.render(scene, taps)
        fresh = _fresh(generator, scene, taps)
        assert incremental.error is None and fresh.error is None
        assert incremental.first_layer == expected_first, scene.edits[0]
        np.testing.assert_allclose(incremental.raw, fresh.raw, atol=1e-6)
        for name in taps:
            np.testing.assert_allclose(incremental.features[name], fresh.features[name], atol=1e-6)
        # and back again: the base scene comes entirely from the cache
        again = renderer.render(base, taps)
        assert again.first_layer == len(generator.layers)
        np.testing.assert_array_equal(again.raw, warm.raw)


def test_first_layer_for_seed_noise_and_unaffecting_changes(generator):
    renderer = Renderer(generator, "cpu")
    renderer.render(Scene(seed=1))
    assert renderer.render(Scene(seed=2)).first_layer == 0
    assert renderer.render(Scene(seed=2, noise_mode="random", noise_seed=1)).first_layer == 0
    assert renderer.render(Scene(seed=2, noise_mode="random", noise_seed=2)).first_layer == 0
    # the noise seed only matters when the noise is random
    assert renderer.render(Scene(seed=2, noise_seed=7)).first_layer == len(generator.layers)
    zero = DirectionEdit(np.ones(generator.w_dim), amount=0.0)
    assert renderer.render(Scene(seed=2, edits=(zero,))).first_layer == len(generator.layers)
    nothing = (FeatureEdit("b8.conv1", (0,), Mask((Rect(0, 0, 1, 1),)), 0.0),
               FeatureEdit("b8.conv1", (0,), Mask(), 2.0),
               FeatureEdit("b8.conv1", (0,), Mask((Rect(0, 0, 1, 1),), dx=2.0), 2.0))
    for edit in nothing:
        assert renderer.render(Scene(seed=2, edits=(edit,))).first_layer == len(generator.layers)
    disabled = DirectionEdit(np.ones(generator.w_dim), amount=2.0, enabled=False)
    assert renderer.render(Scene(seed=2, edits=(disabled,))).first_layer == len(generator.layers)


def test_tap_of_an_earlier_layer_not_cached_restarts_there(generator):
    renderer = Renderer(generator, "cpu")
    layer = generator.layers[1].name
    renderer.render(Scene(seed=4))
    edit = FeatureEdit(generator.layers[-1].name, (0,), Mask((Rect(0, 0, 1, 1),)), 1.0)
    result = renderer.render(Scene(seed=4, edits=(edit,)), taps=[layer])
    # taps are cached from the first pass, so only the last layer is re-run
    assert result.first_layer == len(generator.layers) - 1
    np.testing.assert_allclose(result.features[layer], _fresh(generator, Scene(seed=4), [layer]).features[layer])


def test_feature_edit_changes_only_chosen_channels_inside_mask(generator):
    """The issue's test: difference == amount * mask on the chosen channels, 0 everywhere else."""
    layer = generator.layers[3]  # b8.conv1
    mask = Mask((Stroke(((0.2, 0.3), (0.6, 0.5)), radius=0.15, softness=0.6),
                 Rect(0.5, 0.7, 0.9, 0.95)))
    channels, amount = (1, 4), -2.5
    edit = FeatureEdit(layer.name, channels, mask, amount)
    taps = [layer.name]
    plain = _fresh(generator, Scene(seed=7), taps).features[layer.name]
    edited = _fresh(generator, Scene(seed=7, edits=(edit,)), taps).features[layer.name]
    expected_mask = rasterize(mask, layer.height, layer.width)  # tested on its own in test_masks
    assert 0 < expected_mask.mean() < 0.6
    difference = edited - plain
    for c in range(layer.channels):
        target = amount * expected_mask if c in channels else np.zeros_like(expected_mask)
        np.testing.assert_allclose(difference[c], target, atol=1e-5)
    assert np.abs(difference).max() > 1.0
    # and the final image changed
    assert not np.array_equal(_fresh(generator, Scene(seed=7)).raw,
                              _fresh(generator, Scene(seed=7, edits=(edit,))).raw)


def test_direction_edit_moves_only_its_rows(generator):
    direction = np.arange(generator.w_dim, dtype=np.float32)
    scene = Scene(seed=2, edits=(DirectionEdit(direction, 0.5, first=2, last=3),))
    result = Renderer(generator).render(scene)
    base = Renderer(generator).base_ws(Scene(seed=2))
    expected = base.copy()
    expected[2:4] += 0.5 * direction
    np.testing.assert_allclose(result.ws, expected, atol=1e-6)
    per_row = np.random.default_rng(0).normal(size=(generator.num_ws, generator.w_dim))
    result = Renderer(generator).render(Scene(seed=2, edits=(DirectionEdit(per_row, -1.0, first=4),)))
    expected = base.copy()
    expected[4:] -= per_row[4:]
    np.testing.assert_allclose(result.ws, expected, atol=1e-5)


def test_style_mix_takes_rows_from_the_other_seed(generator):
    renderer = Renderer(generator)
    scene = Scene(seed=2, truncation_psi=0.6, edits=(StyleMix(seed=9, first=3),))
    mixed = renderer.render(scene).ws
    own = renderer.base_ws(Scene(seed=2, truncation_psi=0.6))
    other = renderer.base_ws(Scene(seed=9, truncation_psi=0.6))
    np.testing.assert_array_equal(mixed[:3], own[:3])
    np.testing.assert_array_equal(mixed[3:], other[3:])


def test_region_resample_blends_in_the_other_seeds_activation(generator):
    layer = generator.layers[5]  # b16.conv0
    mask = Mask((Rect(0.0, 0.0, 0.5, 0.6, softness=0.3),))
    taps = [layer.name]
    own = _fresh(generator, Scene(seed=1), taps).features[layer.name]
    other = _fresh(generator, Scene(seed=6), taps).features[layer.name]
    result = _fresh(generator, Scene(seed=1, edits=(RegionResample(layer.name, mask, seed=6),)), taps)
    weight = rasterize(mask, layer.height, layer.width)
    np.testing.assert_allclose(result.features[layer.name], own * (1 - weight) + other * weight,
                               atol=1e-5)


def test_anchored_edit_follows_the_anchor_peak(generator):
    from ganinterface.engine.analysis import locate_peak  # the peak finder is tested on its own

    renderer = Renderer(generator)
    anchor_layer, edit_layer = generator.layers[3], generator.layers[5]  # b8.conv1, b16.conv0
    mask = Mask((Stroke(((0.5, 0.5),), radius=0.1),))
    # the anchor says the feature was at (0.5, 0.5) when the edit was drawn; on this seed the
    # channels peak elsewhere, and the mask must land there instead
    activation = _fresh(generator, Scene(seed=3), [anchor_layer.name]).features[anchor_layer.name]
    peak = locate_peak(activation[[2, 4]].mean(axis=0))
    assert abs(peak.x - 0.5) + abs(peak.y - 0.5) > 0.1
    anchor = Anchor(anchor_layer.name, (2, 4), x=0.5, y=0.5)
    anchored = FeatureEdit(edit_layer.name, (0,), mask, 1.0, anchor=anchor)
    placed = FeatureEdit(edit_layer.name, (0,), Mask((Stroke(((peak.x, peak.y),), radius=0.1),)), 1.0)
    a = renderer.render(Scene(seed=3, edits=(anchored,)), [edit_layer.name])
    b = _fresh(generator, Scene(seed=3, edits=(placed,)), [edit_layer.name])
    np.testing.assert_allclose(a.features[edit_layer.name], b.features[edit_layer.name], atol=1e-5)
    # follow_scale: the mask also grows by the ratio of the spreads
    scaled_anchor = Anchor(anchor_layer.name, (2, 4), x=0.5, y=0.5, spread=peak.spread / 2,
                           follow_scale=True)
    scaled = FeatureEdit(edit_layer.name, (0,), mask, 1.0, anchor=scaled_anchor)
    grown = FeatureEdit(edit_layer.name, (0,), Mask((Stroke(((peak.x, peak.y),), radius=0.2),)), 1.0)
    a = renderer.render(Scene(seed=3, edits=(scaled,)), [edit_layer.name])
    b = _fresh(generator, Scene(seed=3, edits=(grown,)), [edit_layer.name])
    np.testing.assert_allclose(a.features[edit_layer.name], b.features[edit_layer.name], atol=1e-5)
    # reach: the peak is looked for near the anchor's own place only
    near = locate_peak(activation[[2, 4]].mean(axis=0), near=(0.5, 0.5, 0.05))
    assert abs(near.x - peak.x) + abs(near.y - peak.y) > 1e-3, "pick a reach that changes the peak"
    reaching = FeatureEdit(edit_layer.name, (0,), mask, 1.0,
                           anchor=dataclasses.replace(anchor, reach=0.05))
    there = FeatureEdit(edit_layer.name, (0,), Mask((Stroke(((near.x, near.y),), radius=0.1),)), 1.0)
    a = renderer.render(Scene(seed=3, edits=(reaching,)), [edit_layer.name])
    b = _fresh(generator, Scene(seed=3, edits=(there,)), [edit_layer.name])
    np.testing.assert_allclose(a.features[edit_layer.name], b.features[edit_layer.name], atol=1e-5)


@pytest.mark.parametrize("edit, message", [
    (FeatureEdit("b999.conv0", (0,), Mask(), 1.0), "edit 1 (feature): no layer named 'b999.conv0'"),
    (FeatureEdit("b8.conv0", (6,), Mask(), 1.0), "channel 6 does not exist; b8.conv0 has channels 0..5"),
    (DirectionEdit(np.zeros(5), 1.0, name="smile"), "edit 1 (direction 'smile'): direction has shape (5,)"),
    (DirectionEdit(np.zeros(8), 1.0, first=3, last=99), "w rows 3..99"),
    (StyleMix(seed=1, first=-1), "w rows -1.."),
    (FeatureEdit("b8.conv0", (0,), Mask(), 1.0, anchor=Anchor("nope", (0,), 0.5, 0.5)), "anchor: no layer"),
    (FeatureCopy("b99.conv1", Mask(), name="fill"), "edit 1 (feature_copy 'fill'): no layer named 'b99.conv1'"),
    (FeatureCopy("b8.conv0", Mask(), anchor=Anchor("b8.conv0", (9,), 0.5, 0.5)), "channel 9 does not exist"),
])
def test_bad_edits_come_back_as_error_values(generator, edit, message):
    result = Renderer(generator).render(Scene(seed=0, edits=(edit,)))
    assert result.image is None and message in result.error


def test_other_bad_scenes_are_error_values(generator):
    renderer = Renderer(generator)
    assert "tap: no layer named 'x'" in renderer.render(Scene(), taps=["x"]).error
    assert "unconditional" in renderer.render(Scene(class_index=1)).error
    assert "noise mode" in renderer.render(Scene(noise_mode="loud")).error
    assert renderer.render(Scene(seed=1)).ok  # and it still works afterwards


def test_conditional_model_uses_the_class(generator):
    conditional = tiny_stylegan2(c_dim=3)
    renderer = Renderer(conditional)
    a, b = renderer.render(Scene(seed=1, class_index=0)), renderer.render(Scene(seed=1, class_index=2))
    assert a.ok and b.ok and not np.array_equal(a.raw, b.raw)
    assert "conditional" in renderer.render(Scene(seed=1)).error
    assert "out of range" in renderer.render(Scene(seed=1, class_index=3)).error


def test_stylegan3_layers_cache_the_same_way():
    from tiny_models import tiny_stylegan3

    generator = tiny_stylegan3()
    taps = [layer.name for layer in generator.layers]
    mask = Mask((Rect(0.2, 0.2, 0.6, 0.6, softness=0.5),))
    for k in (1, len(generator.layers) - 2):
        renderer = Renderer(generator, "cpu")
        renderer.render(Scene(seed=1), taps)
        scene = Scene(seed=1, edits=(FeatureEdit(generator.layers[k].name, (0,), mask, 1.0),))
        incremental = renderer.render(scene, taps)
        fresh = _fresh(generator, scene, taps)
        assert incremental.first_layer == k + 1  # the cached output of layer k gets the hook
        np.testing.assert_allclose(incremental.raw, fresh.raw, atol=1e-6)


@pytest.mark.parametrize("make", [pytest.param(tiny_stylegan1, marks=pytest.mark.slow), tiny_stylegan2,
                                  pytest.param(tiny_stylegan3, marks=pytest.mark.slow)])
def test_layers_but_torgb_and_the_last_hand_on_their_hooked_output_as_x(make):
    """What the renderer relies on to apply a changed hook to a layer's cached output."""
    g = make()
    with torch.no_grad():
        ws = g.mapping(torch.from_numpy(z_from_seed(3, g.z_dim)))
        for k, info in enumerate(g.layers[:-1]):
            if info.kind == "torgb":
                continue
            hooked = g.synthesize(ws, hooks={info.name: lambda x: x.mul_(2)}, taps=[info.name],
                                  keep_states=[k + 1])
            assert torch.equal(hooked.states[k + 1]["x"], hooked.taps[info.name])
            plain = g.synthesize(ws, stop=k + 1, keep_states=[k + 1]).states[k + 1]
            resumed = g.synthesize(ws, start=k + 1, state={**plain, "x": plain["x"] * 2})
            assert torch.equal(resumed.image, hooked.image), info.name


def test_layer_features_stacks_several_scenes(generator):
    renderer = Renderer(generator)
    stacked = renderer.layer_features([Scene(seed=1), Scene(seed=2)], "b8.conv1")
    assert stacked.shape == (2, 6, 8, 4)
    np.testing.assert_array_equal(stacked[1], _fresh(generator, Scene(seed=2), ["b8.conv1"]).features["b8.conv1"])
    from ganinterface.engine.renderer import RenderError
    with pytest.raises(RenderError, match="seed 3: tap: no layer named 'zz'"):
        renderer.layer_features([Scene(seed=3)], "zz")


def test_results_do_not_share_memory_with_the_cache(generator):
    renderer = Renderer(generator)
    first = renderer.render(Scene(seed=8), ["b8.conv1"])
    expected_raw, expected_features = first.raw.copy(), first.features["b8.conv1"].copy()
    first.raw[:] = 0
    first.features["b8.conv1"][:] = 0
    first.ws[:] = 0
    again = renderer.render(Scene(seed=8), ["b8.conv1"])
    assert again.first_layer == len(generator.layers)
    np.testing.assert_array_equal(again.raw, expected_raw)
    np.testing.assert_array_equal(again.features["b8.conv1"], expected_features)
    assert np.abs(renderer.base_ws(Scene(seed=8))).sum() > 0


def test_anchor_composes_with_the_masks_own_placement():
    from ganinterface.engine.analysis import anchored_mask

    activation = np.zeros((1, 16, 16))
    activation[0, 12:14, 4:6] = 1.0  # peak centred at x = 5/16, y = 13/16
    anchor = Anchor("any", (0,), x=0.5, y=0.4, spread=0.1, follow_scale=True)
    stroke = Stroke(((0.6, 0.45),), radius=0.05)
    mask = Mask((stroke,), dx=0.05, dy=-0.02, scale=1.5, cx=0.55, cy=0.5)
    moved = anchored_mask(mask, anchor, activation)
    # by hand: first the mask's own placement, then the anchor's move (peak + ratio * (q - anchor))
    from ganinterface.engine.analysis import locate_peak
    peak = locate_peak(activation[0])
    ratio = peak.spread / anchor.spread
    assert peak.x == pytest.approx(5 / 16) and peak.y == pytest.approx(13 / 16) and 0 < ratio < 1
    qx = 0.55 + 1.5 * (0.6 - 0.55) + 0.05
    qy = 0.5 + 1.5 * (0.45 - 0.5) - 0.02
    px, py = peak.x + ratio * (qx - 0.5), peak.y + ratio * (qy - 0.4)
    expected = Mask((Stroke(((px, py),), radius=0.05 * 1.5 * ratio),))
    np.testing.assert_allclose(rasterize(moved, 128, 128), rasterize(expected, 128, 128), atol=1e-5)


def test_stylegan3_edits_cover_the_image_part_of_margined_maps_only():
    """StyleGAN3 maps carry a border around the image; a whole-image mask edits the inside only."""
    from tiny_models import tiny_stylegan3

    generator = tiny_stylegan3()
    layer = next(info for info in generator.layers if info.margin >= 1)
    m = int(round(layer.margin))
    edit = FeatureEdit(layer.name, (0,), Mask((Rect(0.0, 0.0, 1.0, 1.0),)), 2.0)
    renderer = Renderer(generator, "cpu")
    plain = renderer.render(Scene(seed=2), [layer.name]).features[layer.name]
    edited = renderer.render(Scene(seed=2, edits=(edit,)), [layer.name]).features[layer.name]
    delta = edited - plain
    expected = np.zeros_like(delta)
    expected[0, m:layer.height - m, m:layer.width - m] = 2.0
    np.testing.assert_allclose(delta, expected, atol=1e-5)


def _bilinear_clamped(features, xs, ys):
    """features (C, h, w) at fractional pixel positions (xs, ys), positions clamped to the map."""
    _, h, w = features.shape
    xs, ys = np.clip(xs, 0, w - 1), np.clip(ys, 0, h - 1)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = xs - x0, ys - y0
    return ((1 - fy) * ((1 - fx) * features[:, y0, x0] + fx * features[:, y0, x1])
            + fy * ((1 - fx) * features[:, y1, x0] + fx * features[:, y1, x1]))


def test_feature_copy_takes_the_layers_own_features_from_the_mapped_place(generator):
    """Inside the mask, features from centre + scale * (p - centre) + offset of the same map, by an
    independent bilinear sampler; outside it, the features as they were."""
    from ganinterface.engine.kinds import FeatureCopy

    layer = generator.layers[5]  # b16.conv0, 16x8
    h, w = layer.height, layer.width
    mask = Mask((Rect(0.25, 0.25, 0.75, 0.6, softness=0.4),))
    own = _fresh(generator, Scene(seed=4), [layer.name]).features[layer.name]
    weight = rasterize(mask, h, w)
    assert 0 < weight.mean() < 0.5
    # a whole-pixel shift: the region takes the map 3 rows down and 1 column left
    shift = FeatureCopy(layer.name, mask, offset=(-1 / w, 3 / h))
    got = _fresh(generator, Scene(seed=4, edits=(shift,)), [layer.name]).features[layer.name]
    rows = np.clip(np.arange(h) + 3, 0, h - 1)
    cols = np.clip(np.arange(w) - 1, 0, w - 1)
    shifted = own[:, rows][:, :, cols]
    np.testing.assert_allclose(got, own + weight * (shifted - own), atol=1e-5)
    # shrunk towards a centre, blended at 0.7
    centre = (0.5, 0.7)
    copy = FeatureCopy(layer.name, mask, scale=0.5, centre=centre, amount=0.7)
    got = _fresh(generator, Scene(seed=4, edits=(copy,)), [layer.name]).features[layer.name]
    px, py = np.meshgrid((np.arange(w) + 0.5) / w, (np.arange(h) + 0.5) / h)
    qx, qy = centre[0] + 0.5 * (px - centre[0]), centre[1] + 0.5 * (py - centre[1])
    source = _bilinear_clamped(own, qx * w - 0.5, qy * h - 0.5)
    np.testing.assert_allclose(got, own + 0.7 * weight * (source - own), atol=1e-5)
    assert np.abs(got - own).max() > 0.1
    # amount 0 or an empty mask: nothing happens
    for idle in (dataclasses.replace(copy, amount=0.0), dataclasses.replace(copy, mask=Mask())):
        same = _fresh(generator, Scene(seed=4, edits=(idle,)), [layer.name]).features[layer.name]
        np.testing.assert_array_equal(same, own)


def test_anchored_feature_copy_moves_its_centre_with_the_mask(generator):
    from ganinterface.engine.analysis import locate_peak
    from ganinterface.engine.kinds import FeatureCopy

    anchor_layer, layer = generator.layers[3], generator.layers[5]
    activation = _fresh(generator, Scene(seed=3), [anchor_layer.name]).features[anchor_layer.name]
    peak = locate_peak(activation[[2, 4]].mean(axis=0))
    dx, dy = peak.x - 0.5, peak.y - 0.5
    assert abs(dx) + abs(dy) > 0.1
    anchored = FeatureCopy(layer.name, Mask((Stroke(((0.5, 0.5),), radius=0.2),)), scale=0.6,
                           centre=(0.5, 0.6), offset=(0.05, 0.0),
                           anchor=Anchor(anchor_layer.name, (2, 4), x=0.5, y=0.5))
    placed = FeatureCopy(layer.name, Mask((Stroke(((peak.x, peak.y),), radius=0.2),)), scale=0.6,
                         centre=(0.5 + dx, 0.6 + dy), offset=(0.05, 0.0))
    a = Renderer(generator).render(Scene(seed=3, edits=(anchored,)), [layer.name])
    b = _fresh(generator, Scene(seed=3, edits=(placed,)), [layer.name])
    np.testing.assert_allclose(a.features[layer.name], b.features[layer.name], atol=1e-5)
    plain = _fresh(generator, Scene(seed=3), [layer.name]).features[layer.name]
    assert np.abs(a.features[layer.name] - plain).max() > 0.05


def test_stylegan3_copies_map_the_image_part_of_margined_maps():
    """A one-pixel shift on a map with a border: the sources are counted inside the border."""
    from ganinterface.engine.kinds import FeatureCopy
    from tiny_models import tiny_stylegan3

    generator = tiny_stylegan3()
    layer = next(info for info in generator.layers if info.margin >= 1)
    m = int(round(layer.margin))
    inner_h, inner_w = layer.height - 2 * m, layer.width - 2 * m
    renderer = Renderer(generator, "cpu")
    plain = renderer.render(Scene(seed=2), [layer.name]).features[layer.name]
    identity = FeatureCopy(layer.name, Mask((Rect(0.0, 0.0, 1.0, 1.0),)))
    same = renderer.render(Scene(seed=2, edits=(identity,)), [layer.name]).features[layer.name]
    np.testing.assert_allclose(same, plain, atol=1e-5)
    shift = FeatureCopy(layer.name, Mask((Rect(0.0, 0.0, 1.0, 1.0),)), offset=(2 / inner_w, 0.0))
    got = renderer.render(Scene(seed=2, edits=(shift,)), [layer.name]).features[layer.name]
    expected = plain.copy()
    inside = (slice(None), slice(m, layer.height - m))
    expected[inside + (slice(m, layer.width - m - 2),)] = plain[inside + (slice(m + 2, layer.width - m),)]
    # the last two columns of the image part read from the border and beyond (clamped): not checked
    np.testing.assert_allclose(got[..., :layer.width - m - 2], expected[..., :layer.width - m - 2], atol=1e-5)
    np.testing.assert_allclose(got[..., layer.width - m:], plain[..., layer.width - m:], atol=1e-5)
