"""Edits that keep the rest of the picture (``keep_rest``): outside their masks the picture is the
render without them, to the byte; inside, the edit's own render; between, a blend of the two.
Checked against separate renders of the scene with and without those edits, on the built-in model
(128 x 64: room for a mask with a picture around it)."""

import dataclasses

import cv2
import numpy as np
import pytest

from ganinterface.engine.kinds import DirectionEdit, FeatureCopy, FeatureEdit
from ganinterface.engine.keep_rest import REST_FEATHER, REST_GROW, rest_weights
from ganinterface.engine.masks import rasterize
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Mask, Rect, Scene
from ganinterface.models import load_generator

BOX = Mask((Rect(0.3, 0.55, 0.7, 0.75, softness=0.2),))
FAR, DEEP = 9, 3  # pixels from the mask's footprint: beyond the grown, feathered margin; inside it


@pytest.fixture(scope="module")
def renderer():
    return Renderer(load_generator(None), "cpu")


def paint(keep_rest: bool) -> tuple:
    return (FeatureEdit("b32.conv0", tuple(range(0, 128, 3)), BOX, 4.0, keep_rest=keep_rest),
            FeatureCopy("b64.conv1", BOX, scale=0.6, keep_rest=keep_rest))


def footprint(shape: tuple[int, int]) -> np.ndarray:
    return rasterize(BOX, *shape) > 0


def distance_outside(inside: np.ndarray) -> np.ndarray:
    return cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 5)


@pytest.mark.parametrize("seed", [3, 41])
def test_outside_the_mask_the_picture_is_the_render_without_the_edits(renderer, seed):
    direction = DirectionEdit(np.random.default_rng(seed).normal(size=renderer.generator.w_dim).astype(np.float32), 1.5)
    kept = renderer.render(Scene(seed=seed, edits=(direction,) + paint(True)))
    rest = renderer.render(Scene(seed=seed, edits=(direction,)))
    spilled = renderer.render(Scene(seed=seed, edits=(direction,) + paint(False)))
    unedited = renderer.render(Scene(seed=seed))
    inside = footprint(kept.image.shape[:2])
    far = distance_outside(inside) > FAR
    deep = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 5) > DEEP
    assert (np.abs(spilled.raw - rest.raw).max(axis=0)[far] > 0.05).any(), "the edit spills nowhere"
    np.testing.assert_array_equal(kept.raw[:, far], rest.raw[:, far])
    np.testing.assert_allclose(kept.raw[:, deep], spilled.raw[:, deep], atol=1e-6)
    low, high = np.minimum(rest.raw, spilled.raw), np.maximum(rest.raw, spilled.raw)
    assert ((kept.raw >= low - 1e-6) & (kept.raw <= high + 1e-6)).all()
    # the direction, which does not keep the rest, still moves the whole picture
    assert np.abs(kept.raw[:, far] - unedited.raw[:, far]).max() > 0.05


def test_a_batch_draws_the_same_bytes_as_single_renders(renderer):
    scenes = [Scene(seed=5, edits=paint(True)), Scene(seed=6), Scene(seed=7, edits=paint(False)),
              Scene(seed=8, edits=paint(True)[:1])]
    batch = renderer.render_batch(scenes)
    for scene, result in zip(scenes, batch):
        np.testing.assert_array_equal(result.image, renderer.render(scene).image)


def test_a_hidden_edit_keeps_nothing(renderer):
    hidden = tuple(dataclasses.replace(e, enabled=False) for e in paint(True))
    np.testing.assert_array_equal(renderer.render(Scene(seed=9, edits=hidden)).image,
                                  renderer.render(Scene(seed=9)).image)


@pytest.mark.parametrize("height", [128, 1024])
def test_weights_are_one_inside_and_exactly_zero_beyond_the_feather(height):
    inside = np.zeros((height, height // 2), np.float32)
    inside[height // 2:height * 5 // 8, height // 8:height * 3 // 8] = 1.0
    box = Mask((Rect(0.25, 0.5, 0.75, 0.625),))  # the same rows and columns, as a mask
    weights = rest_weights([box, box], height, height // 2)
    assert weights.shape == inside.shape and weights.dtype == np.float32
    distance = distance_outside(inside > 0)
    grow, feather = REST_GROW * height, REST_FEATHER * height  # in pixels: they scale with the picture
    assert (weights[distance > grow + 3 * feather * np.sqrt(2) + 1] == 0).all()
    assert (weights[distance <= grow - feather] > 0.5).all()
    assert (weights[inside > 0] > 0.99).all()
    assert (weights > 0).sum() < (distance < grow + 3 * feather * np.sqrt(2) + 1).sum()
