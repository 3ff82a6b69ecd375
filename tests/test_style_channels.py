"""Style-space edits (``style_channels``) against an independent computation: the same generator with
the chosen affine biases moved by hand, so its own layers make the offset styles."""

import copy

import numpy as np
import pytest
import torch

from ganinterface.engine.kinds import StyleChannelEdit
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Scene, SceneFormatError
from tiny_models import tiny_stylegan1, tiny_stylegan2, tiny_stylegan3

OFFSETS = {"stylegan2": (("b8.conv1", 2, 1.5), ("b8.conv1", 5, -0.8), ("b16.torgb", 0, 2.0)),
           "stylegan3": (("L1_36_8", 1, 1.2), ("L3_16_8", 0, -1.5))}


def by_hand(generator, offsets, amount):
    """A copy whose affine biases are moved so that its styles are the edit's."""
    moved = copy.deepcopy(generator)
    parameters = dict(moved.named_parameters())
    with torch.no_grad():
        for layer, channel, offset in offsets:
            affine = moved.get_submodule(f"synthesis.{layer}.affine")
            parameters[f"synthesis.{layer}.affine.bias"][channel] += amount * offset / affine.bias_gain
    return moved


@pytest.fixture(scope="module", params=["stylegan2", "stylegan3"])
def model(request):
    generator = tiny_stylegan2() if request.param == "stylegan2" else tiny_stylegan3()
    if request.param == "stylegan3":
        assert {layer for layer, _, _ in OFFSETS["stylegan3"]} <= set(generator.style_sizes())
    return generator, OFFSETS[request.param]


def test_offset_styles_render_as_the_same_model_with_its_affine_biases_moved(model):
    generator, offsets = model
    edit = StyleChannelEdit(offsets, 0.7)
    edited = Renderer(generator, "cpu").render(Scene(seed=3, edits=(edit,)))
    expected = Renderer(by_hand(generator, offsets, 0.7), "cpu").render(Scene(seed=3))
    plain = Renderer(generator, "cpu").render(Scene(seed=3))
    assert edited.error is None
    np.testing.assert_allclose(edited.raw, expected.raw, atol=1e-5)
    assert np.abs(edited.raw - plain.raw).max() > 1e-2  # the edit does change the picture


def test_a_batch_offsets_each_scene_by_its_own_edits(model):
    generator, offsets = model
    scenes = [Scene(seed=3, edits=(StyleChannelEdit(offsets, 0.7),)), Scene(seed=4),
              Scene(seed=5, edits=(StyleChannelEdit(offsets, -1.0),))]
    batch = Renderer(generator, "cpu").render_batch(scenes)
    for scene, result, amount in zip(scenes, batch, (0.7, 0.0, -1.0)):
        alone = Renderer(by_hand(generator, offsets, amount), "cpu").render(Scene(seed=scene.seed))
        np.testing.assert_allclose(result.raw, alone.raw, atol=1e-4)


def test_moving_the_amount_rerenders_from_the_first_offset_layer():
    generator = tiny_stylegan2()
    renderer = Renderer(generator, "cpu")
    offsets = OFFSETS["stylegan2"]
    renderer.render(Scene(seed=3, edits=(StyleChannelEdit(offsets, 0.5),)))
    again = renderer.render(Scene(seed=3, edits=(StyleChannelEdit(offsets, 0.9),)))
    assert again.first_layer == generator.layer_index("b8.conv1")


@pytest.mark.parametrize("offsets, message", [
    ((("b8.conv1", 99, 1.0),), "style channel 99 does not exist; b8.conv1 has styles 0..5"),
    ((("nowhere", 0, 1.0),), "layer 'nowhere' has no modulation styles; these do: b4.conv1"),
])
def test_offsets_the_model_lacks_are_refused_in_one_line(offsets, message):
    result = Renderer(tiny_stylegan2(), "cpu").render(Scene(seed=1, edits=(StyleChannelEdit(offsets, 1.0),)))
    assert message in result.error and "\n" not in result.error


def test_stylegan1_models_refuse_style_edits_clearly():
    result = Renderer(tiny_stylegan1(), "cpu").render(
        Scene(seed=1, edits=(StyleChannelEdit((("b8.conv0", 0, 1.0),), 1.0),)))
    assert result.error == ("edit 1 (style_channels): this model (stylegan1) has no modulation "
                            "styles to offset")


def test_style_edits_round_trip_through_scene_files():
    scene = Scene(seed=2, edits=(StyleChannelEdit((("b8.conv1", 2, 1.5), ("b16.conv0", 0, -0.25)), -2.0,
                                                  name="open mouth", source="mouth-open.json"),))
    assert Scene.from_json(scene.to_json()) == scene


@pytest.mark.parametrize("offsets, message", [
    ([], "edits[0].offsets should be a non-empty list of [layer, channel, offset]"),
    ([["b8.conv1", 2]], "edits[0].offsets[0] should be [layer, channel, offset]"),
    ([["b8.conv1", -1, 1.0]], "edits[0].offsets[0] has a negative channel index"),
    ([["b8.conv1", 1, "x"]], "edits[0].offsets[0] offset should be"),
])
def test_malformed_offsets_in_a_scene_are_named(offsets, message):
    data = Scene(seed=2).to_dict()
    data["edits"] = [{"kind": "style_channels", "offsets": offsets, "amount": 1.0}]
    with pytest.raises(SceneFormatError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Scene.from_dict(data)


BELOW_ZERO = (("b8.conv0", 1, 0.9), ("b16.conv1", 3, -1.1))  # other channels than OFFSETS' stylegan2


@pytest.mark.parametrize("amount, applied", [(0.7, "offsets"), (-0.7, "negative_offsets")])
def test_a_two_sided_edit_offsets_its_negative_side_below_zero(amount, applied):
    generator = tiny_stylegan2()
    offsets = OFFSETS["stylegan2"]
    edit = StyleChannelEdit(offsets, amount, negative_offsets=BELOW_ZERO)
    edited = Renderer(generator, "cpu").render(Scene(seed=3, edits=(edit,)))
    by = offsets if applied == "offsets" else BELOW_ZERO
    expected = Renderer(by_hand(generator, by, amount), "cpu").render(Scene(seed=3))
    np.testing.assert_allclose(edited.raw, expected.raw, atol=1e-5)


def test_a_two_sided_edit_checks_both_sides_and_round_trips():
    far_below = StyleChannelEdit(OFFSETS["stylegan2"], 1.0, negative_offsets=(("b8.conv1", 99, 1.0),))
    result = Renderer(tiny_stylegan2(), "cpu").render(Scene(seed=1, edits=(far_below,)))
    assert "style channel 99 does not exist" in result.error
    scene = Scene(seed=2, edits=(StyleChannelEdit(OFFSETS["stylegan2"], -2.0, negative_offsets=BELOW_ZERO),))
    assert Scene.from_json(scene.to_json()) == scene
    one_sided = Scene(seed=2, edits=(StyleChannelEdit(OFFSETS["stylegan2"], -2.0),))
    assert "negative_offsets" not in one_sided.to_json()  # files without a second side stay as they were


def test_a_two_sided_edit_describes_both_sides_and_counts_many_layers():
    from ganinterface.engine.kinds import kind_of

    many = tuple((layer, 0, 1.0) for layer in ("b8.conv0", "b8.conv1", "b16.conv0", "b16.conv1"))
    edit = StyleChannelEdit(OFFSETS["stylegan2"], -1.0, name="band", negative_offsets=many)
    assert kind_of(edit).describe(edit) == ("“band” Style channels -1.00  3 channels in b8.conv1, "
                                            "b16.torgb; below zero 4 channels in 4 layers")
