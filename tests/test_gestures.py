"""Gestures become edits without a window: drags are one undo step, names are unique, anchors come
from the features as they were when the drag began."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from ganinterface.engine import commands as cmd
from ganinterface.engine.gestures import PaintSettings, Painter, brush_radius
from ganinterface.engine.kinds import FeatureEdit
from ganinterface.engine.scene import Mask, Rect, Scene, Stroke

LAYER = "b16.conv1"
SETTINGS = PaintSettings(layer=LAYER, channels=(1, 2), channel_count=8, strength=1.5, softness=0.25)


def painter(scene: Scene = Scene(), **kwargs) -> tuple[Painter, cmd.CommandStack, list[str]]:
    stack = cmd.CommandStack(scene)
    told: list[str] = []
    return Painter(stack, told.append, **kwargs), stack, told


def brush_drag(paint: Painter, points, settings=SETTINGS, sign=1, radius=0.05) -> None:
    for end in range(1, len(points) + 1):
        paint.stroke(points[:end], radius, sign, end == len(points), settings)


def test_a_brush_drag_is_one_edit_and_one_undo_step():
    paint, stack, told = painter()
    brush_drag(paint, [(0.1, 0.2), (0.2, 0.3), (0.3, 0.35)])
    (edit,) = stack.scene.edits
    assert edit == FeatureEdit(LAYER, (1, 2), Mask((Stroke(((0.1, 0.2), (0.2, 0.3), (0.3, 0.35)),
                                                          radius=0.05, softness=0.25),)),
                               1.5, name="brush stroke 1")
    assert stack.labels() == ["Brush stroke"] and told == []
    stack.undo()
    assert stack.scene.edits == () and not stack.can_undo()


def test_two_drags_are_two_undo_steps_with_their_own_names():
    paint, stack, _ = painter()
    brush_drag(paint, [(0.1, 0.1), (0.2, 0.2)])
    brush_drag(paint, [(0.5, 0.5), (0.6, 0.6)])
    for box in ((0.1, 0.1, 0.3, 0.3), (0.2, 0.6, 0.4, 0.9)):
        paint.rectangle(box, 1, False, SETTINGS)
        paint.rectangle(box, 1, True, SETTINGS)
    assert [e.name for e in stack.scene.edits] == ["brush stroke 1", "brush stroke 2",
                                                   "rectangle 1", "rectangle 2"]
    assert stack.labels() == ["Brush stroke", "Brush stroke", "Rectangle", "Rectangle"]
    assert len(cmd.edit_groups(stack.scene.edits)) == 4  # four rows of the edit stack


def test_a_name_already_in_the_scene_is_not_given_again():
    taken = FeatureEdit(LAYER, (0,), Mask((Rect(0, 0, 1, 1),)), 1.0, name="rectangle 1")
    paint, stack, _ = painter(Scene(edits=(taken,)))
    paint.rectangle((0.1, 0.1, 0.5, 0.5), 1, False, SETTINGS)
    paint.rectangle((0.1, 0.1, 0.6, 0.6), 1, True, SETTINGS)  # the drag keeps its name throughout
    assert [e.name for e in stack.scene.edits] == ["rectangle 1", "rectangle 2"]


@pytest.mark.parametrize("subtract, sign, amount", [(False, 1, 1.5), (False, -1, -1.5),
                                                    (True, 1, -1.5), (True, -1, 1.5)])
def test_subtract_flips_the_sign_of_either_button(subtract, sign, amount):
    paint, stack, _ = painter()
    settings = PaintSettings(LAYER, (1,), 8, strength=1.5, subtract=subtract)
    brush_drag(paint, [(0.5, 0.5)], settings, sign=sign)
    assert stack.scene.edits[0].amount == amount


def test_no_channel_selected_edits_all_channels_and_says_so():
    paint, stack, told = painter()
    brush_drag(paint, [(0.5, 0.5)], PaintSettings(LAYER, (), 8))
    assert stack.scene.edits[0].channels == tuple(range(8))
    assert told and "all 8 channels of b16.conv1" in told[-1]


def test_the_anchor_is_measured_on_the_features_at_the_start_of_the_drag():
    before = np.zeros((4, 8, 8), np.float32)
    before[1, 6, 2] = 5.0  # channels 1 and 2 peak low on the left before the edit ...
    after = np.zeros((4, 8, 8), np.float32)
    after[1, 1, 6] = 5.0  # ... and, once the stroke has been rendered, high on the right
    paint, stack, _ = painter()
    start = PaintSettings(LAYER, (1, 2), 4, anchored=True, features=before)
    paint.stroke([(0.2, 0.8)], 0.05, 1, False, start)
    paint.stroke([(0.2, 0.8), (0.3, 0.8)], 0.05, 1, True,
                 PaintSettings(LAYER, (1, 2), 4, anchored=True, features=after))
    anchor = stack.scene.edits[0].anchor
    assert (anchor.layer, anchor.channels) == (LAYER, (1, 2))
    assert anchor.x < 0.5 and anchor.y > 0.5  # where the peak was before


def test_no_anchor_when_off_or_without_a_selection():
    features = np.ones((4, 8, 8), np.float32)
    paint, stack, _ = painter()
    brush_drag(paint, [(0.5, 0.5)], PaintSettings(LAYER, (1,), 4, features=features))
    brush_drag(paint, [(0.5, 0.5)], PaintSettings(LAYER, (), 4, anchored=True, features=features))
    brush_drag(paint, [(0.5, 0.5)], PaintSettings(LAYER, (9,), 4, anchored=True, features=features))
    assert [e.anchor for e in stack.scene.edits] == [None, None, None]


def test_a_flat_rectangle_adds_nothing_and_a_drag_ending_flat_keeps_its_last_box():
    paint, stack, _ = painter()
    paint.rectangle((0.3, 0.3, 0.3, 0.3), 1, False, SETTINGS)
    paint.rectangle((0.3, 0.3, 0.3, 0.5), 1, True, SETTINGS)
    assert stack.scene.edits == () and not stack.can_undo()
    paint.rectangle((0.3, 0.3, 0.5, 0.5), 1, False, SETTINGS)
    paint.rectangle((0.3, 0.3, 0.5, 0.3), 1, True, SETTINGS)
    (edit,) = stack.scene.edits
    assert edit.mask.shapes == (Rect(0.3, 0.3, 0.5, 0.5, softness=0.25),)
    paint.rectangle((0.1, 0.1, 0.2, 0.2), 1, True, SETTINGS)  # the next drag is its own step
    assert stack.labels() == ["Rectangle", "Rectangle"]


def test_without_a_layer_gestures_add_nothing():
    paint, stack, _ = painter()
    nowhere = PaintSettings("", (1,), 8)
    brush_drag(paint, [(0.5, 0.5), (0.6, 0.6)], nowhere)
    paint.rectangle((0.1, 0.1, 0.5, 0.5), 1, True, nowhere)
    paint.resample((0.1, 0.1, 0.5, 0.5), nowhere)
    paint.fill((0.1, 0.1, 0.5, 0.5), nowhere)
    assert stack.scene.edits == ()


def test_resample_takes_a_random_seed_and_each_region_is_its_own_row():
    paint, stack, _ = painter(rng=random.Random(7))
    expected = random.Random(7)
    paint.resample((0.1, 0.2, 0.4, 0.5), SETTINGS)
    paint.resample((0.5, 0.2, 0.9, 0.5), SETTINGS)
    paint.resample((0.5, 0.2, 0.5, 0.5), SETTINGS)  # no width: nothing
    first, second = stack.scene.edits
    assert (first.layer, first.mask.shapes) == (LAYER, (Rect(0.1, 0.2, 0.4, 0.5, softness=0.25),))
    assert [first.seed, second.seed] == [expected.randrange(100_000), expected.randrange(100_000)]
    assert len(cmd.edit_groups(stack.scene.edits)) == 2
    assert stack.labels() == ["Resample region", "Resample region"]


def test_fill_copies_the_whole_rectangle_from_its_best_side_at_the_layer_and_every_later_one():
    image = np.full((64, 64, 3), 200, np.uint8)
    image[:, 30:] = 40  # dark on the right: the left half is what surrounds a box on the left
    image[20:30, 10:20] = (255, 0, 0)  # the object to remove
    layers = ("b8.conv1", LAYER, "b16.torgb", "b32.conv0")
    settings = dataclasses.replace(SETTINGS, layers=layers, image=image)
    paint, stack, messages = painter()
    paint.fill((10 / 64, 20 / 64, 20 / 64, 30 / 64), settings)
    paint.fill((0.2, 0.4, 0.2, 0.5), settings)  # no width: nothing
    edits = stack.scene.edits
    assert [e.layer for e in edits] == [LAYER, "b16.torgb", "b32.conv0"]
    assert {(e.kind, e.name, e.scale, e.amount) for e in edits} == {("feature_copy", "fill 1", 1.0, 1.0)}
    assert {e.mask for e in edits} == {Mask((Rect(10 / 64, 20 / 64, 20 / 64, 30 / 64, softness=0.25),))}
    # up or down stays on the light left half; right would reach the dark half
    assert edits[0].offset[0] == 0 and edits[0].offset[1] != 0
    assert len(cmd.edit_groups(edits)) == 1 and stack.labels() == ["Fill region"]
    assert "Filled with what lies" in messages[-1]


def test_a_fill_with_no_room_around_it_adds_nothing_and_says_why():
    settings = dataclasses.replace(SETTINGS, layers=(LAYER,), image=np.zeros((32, 16, 3), np.uint8))
    paint, stack, messages = painter()
    paint.fill((0.05, 0.05, 0.95, 0.95), settings)
    assert stack.scene.edits == ()
    assert "no room beside the rectangle" in messages[-1] and "smaller" in messages[-1]


def test_style_mix_is_one_named_step():
    paint, stack, _ = painter()
    paint.style_mix(9, 4)
    (mix,) = stack.scene.edits
    assert (mix.kind, mix.seed, mix.first, mix.name) == ("style_mix", 9, 4, "style of 9")
    assert stack.labels() == ["Style mix from seed 9"]


def test_brush_radius_is_in_image_heights_and_strokes_store_it_rounded():
    assert brush_radius(8, 64) == 0.0625
    assert brush_radius(8, 0) == 4.0  # no image yet: no division by zero
    paint, stack, _ = painter()
    brush_drag(paint, [(0.5, 0.5)], radius=brush_radius(7, 96))
    assert stack.scene.edits[0].mask.shapes[0].radius == 0.03646
